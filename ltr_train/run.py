"""A whole training run in a run directory, for either framework.

``<run_dir>/``: ``config.json`` (resolved), ``train.log`` (loguru), ``events.*`` (tensorboardX),
``checkpoint_latest``/``checkpoint_best`` (+ ``.prev``), ``metrics.json`` (validation and test
at the best checkpoint).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

from loguru import logger
from tqdm import tqdm

from ltr_common.config import SELECTION_METRIC, ConfigError, TrainConfig, load_config_file
from ltr_common.data import fingerprint, load_split
from ltr_common.evaluation import metric_order
from ltr_common.files import restore_with_fallback, write_json
from ltr_common.lists import Split
from ltr_common.loop import train
from ltr_common.movielens import DataError, Ratings
from ltr_common.stats import format_difference
from ltr_common.tasks import make_task
from ltr_train.backends import FRAMEWORKS, framework_package, make_backend
from ltr_train.compare import compare, evaluation_columns, fit_baselines


def summary_writer_class():
    """tensorboardX's ``SummaryWriter``, imported without importing PyTorch.

    tensorboardX's writer module imports torch when it is installed, only so that it can
    accept torch tensors as values; that costs a JAX run about 2 s of start-up on a 2-core
    CPU. The scalars logged here are floats, so unless torch is loaded already, its import
    is made to fail (``sys.modules[name] = None``) for the moment tensorboardX is imported.
    """
    if "tensorboardX" in sys.modules or "torch" in sys.modules:
        from tensorboardX import SummaryWriter

        return SummaryWriter
    sys.modules["torch"] = None
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


def default_run_dir(framework: str, config: TrainConfig) -> Path:
    return Path("runs") / f"{framework}-{config.loss}-{time.strftime('%Y%m%d-%H%M%S')}"


RUN_OUTPUTS = ("checkpoint_latest", "checkpoint_best", "metrics.json")


def run_config_data(framework: str, config: TrainConfig) -> dict:
    """What a run writes to its ``config.json``, as JSON reads it back."""
    return json.loads(json.dumps({"framework": framework, **dataclasses.asdict(config)}))


def check_new_run_dir(run_dir: Path, framework: str, config: TrainConfig) -> None:
    """Refuse a folder that holds a run: a ``config.json`` of another framework or config, or
    what a run leaves (``RUN_OUTPUTS``), which a new run there would write over.

    Other files do not count, nor does this very run's ``config.json`` alone: the other
    processes of a multi-host run start in the folder where process 0 has written it, before
    any of them can train a step or write a checkpoint.
    """
    run_dir = Path(run_dir)
    found = [name for name in RUN_OUTPUTS if (run_dir / name).exists()]
    saved = run_dir / "config.json"
    if saved.exists():
        try:
            same = json.loads(saved.read_text(encoding="utf-8")) == run_config_data(framework, config)
        except (OSError, ValueError):  # unreadable, not UTF-8 or not JSON: not this run's
            same = False
        if not same:
            found.insert(0, "config.json")
    if found:
        raise ConfigError(
            f"--run-dir: {run_dir} holds a run already ({', '.join(found)}); choose another "
            f"folder, or continue that run with --resume {run_dir}"
        )


DATA_RECORD = "data.json"


def check_run_data(run_dir: Path, ratings: Ratings, record: dict | None = None) -> None:
    """Refuse ``ratings`` that are not what the run in ``run_dir`` was trained on (its
    ``data.json``: counts and content hash); a run without the record is taken as it is.
    ``record``: ``fingerprint(ratings)`` where the caller has it already."""
    path = Path(run_dir) / DATA_RECORD
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable ({err})") from None
    now = record if record is not None else fingerprint(ratings)
    changed = [
        k for k in ("ratings", "users", "items", "implicit", "timed", "sha256") if saved.get(k) != now[k]
    ]
    if changed:
        raise DataError(
            f"{path}: the run was trained on other data than {now['source']} holds now "
            f"({', '.join(f'{k}: {saved.get(k)!r} then, {now[k]!r} now' for k in changed[:2])})"
        )


def load_run_data(run_dir: Path, config: TrainConfig, *, refit: bool | None = None) -> tuple[Ratings, Split]:
    """The ratings and split of the run in ``run_dir`` (``config``: its saved config), checked
    to be the data it was trained on (``check_run_data``)."""
    ratings, split = load_split(config, refit=refit)
    check_run_data(run_dir, ratings)
    return ratings, split


def load_run_config(run_dir: Path) -> tuple[str, TrainConfig]:
    """The framework and configuration a run directory was trained with (its ``config.json``)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (it has no config.json)")
    data = load_config_file(path, TrainConfig, allow={"framework"}, flag=None)
    framework = data.pop("framework", "jax")
    if framework not in FRAMEWORKS:
        raise ConfigError(f"{path}: framework must be one of {', '.join(FRAMEWORKS)}, found {framework!r}")
    try:
        return framework, TrainConfig(**data)
    except (ConfigError, TypeError) as err:
        raise ConfigError(f"{path}: {err}") from None


# Beside the model in every run's table: for retrieval the strongest peers that need nothing
# beyond NumPy (EASE, item-kNN; ALS and BPR are in scripts/baselines.py), for reranking the
# item mean.
RUN_BASELINES = {"retrieve": ("popularity", "ease", "item_knn"), "rerank": ("popularity", "item_mean")}
# EASE and item-kNN hold [items, items] float64 matrices (and EASE inverts one): beyond this
# catalog (2 GiB each) a run leaves them out and says so; scripts/baselines.py still fits them.
ITEM_ITEM_PEERS, ITEM_ITEM_LIMIT = ("ease", "item_knn"), 16_384


def run_baselines(task: str, num_items: int) -> tuple[str, ...]:
    """The baselines a run of ``task`` fits beside its model, for a catalog of ``num_items``."""
    names = RUN_BASELINES[task]
    if num_items <= ITEM_ITEM_LIMIT:
        return names
    left = [n for n in names if n in ITEM_ITEM_PEERS]
    if left:
        logger.info(
            "{} items: {} left out of the run's table (above {} items)", num_items, left, ITEM_ITEM_LIMIT
        )
    return tuple(n for n in names if n not in ITEM_ITEM_PEERS)


def run(
    framework: str,
    config: TrainConfig,
    run_dir: Path,
    *,
    data: tuple[Ratings, Split] | None = None,
    resume: bool = False,
    progress_bar=True,
    after_step=None,
) -> dict:
    """Train, then evaluate the best checkpoint; returns ``metrics.json``'s data.

    Validation and test metrics (for a refit, test only), how many lists each counts, and
    ``RUN_BASELINES`` on the same lists with the model's paired per-list differences.
    ``data``: the ratings and their split (default: MovieLens 100K as ``config`` says,
    through ``load_split``); tests pass small synthetic data here.

    A new run refuses a ``run_dir`` that holds a run (``check_new_run_dir``). The data, the
    task and the trainer are made before anything is written, so that an option they refuse
    (``ConfigError``) leaves the folder as it was.
    """
    run_dir = Path(run_dir)
    if not resume:
        check_new_run_dir(run_dir, framework, config)
    ratings, split = data if data is not None else load_split(config)
    record = fingerprint(ratings)
    if resume:
        check_run_data(run_dir, ratings, record)
    task = make_task(config, split)
    trainer = make_backend(framework, config, ratings.num_users, ratings.num_items)
    run_dir.mkdir(parents=True, exist_ok=True)
    sink = logger.add(run_dir / "train.log", level="INFO")
    try:
        # Rewritten on resume too: ``--epochs`` may have been raised (scripts/train.py).
        write_json(run_dir / "config.json", run_config_data(framework, config))
        write_json(run_dir / DATA_RECORD, record)
        logger.info("ratings from {}: {}; lists:\n{}", ratings.source, len(ratings), split.summary())
        logger.info("{} trainer on {}; run directory {}", framework, trainer.devices(), run_dir)
        SummaryWriter = summary_writer_class()
        started, epoch_seconds = time.perf_counter(), []
        with SummaryWriter(str(run_dir)) as writer:
            bar = (
                (lambda **kw: tqdm(desc=f"{framework} {config.task} {config.loss}", unit="step", **kw))
                if progress_bar
                else None
            )
            progress = train(
                config,
                task,
                trainer,
                run_dir,
                writer=writer,
                resume=resume,
                progress_bar=bar,
                after_step=after_step,
                epoch_seconds=epoch_seconds,
            )
        seconds = time.perf_counter() - started
        best = restore_with_fallback(trainer.restore, run_dir / "checkpoint_best")
        parts = ("test",) if config.refit else ("validation", "test")
        results = {
            "framework": framework,
            "task": config.task,
            "best_step": best.get("best_step", progress.best_step),  # of the weights evaluated
            "steps": progress.step,
            "stopped_early": progress.stopped_early,
            "train_seconds": seconds,
            "epoch_seconds": epoch_seconds,
            **{
                column: task.evaluate(trainer, part, history=shown)
                for column, (part, shown) in evaluation_columns(config.task, config.refit).items()
            },
            "lists": {part: task.counts(part) for part in parts},
        }
        others = fit_baselines(
            run_baselines(config.task, ratings.num_items),
            config,
            ratings,
            split,
            framework_package(framework),
        )
        results.update(compare(task, trainer, others, parts))
        write_json(run_dir / "metrics.json", results)
        return results
    finally:
        logger.remove(sink)


def format_table(results: dict) -> str:
    """The model's metrics per split, then ndcg@10 beside each baseline with the paired
    difference (model minus baseline) and its standard error."""
    parts = [p for p in ("validation", "test") if p in results]
    names = sorted(results[parts[-1]], key=metric_order)
    if len(names) > 8:  # retrieval: the cut-offs 10 and 20 (every metric is in metrics.json)
        names = [n for n in names if n.endswith(("@10", "@20"))]
    lines = [f"{'split':<11}" + "".join(f"{n:>14}" for n in names)]
    for part in parts:
        lines.append(f"{part:<11}" + "".join(f"{results[part][n]:>14.4f}" for n in names))
    for part in parts:
        counts = results.get("lists", {}).get(part, {})
        lines.append(
            f"\n{part} {SELECTION_METRIC} on the same {counts.get('lists', '?')} lists "
            f"(left out: {counts.get('left out', 0)}); model minus baseline, ± paired standard error"
        )
        lines.append(f"  {'model':<12}{results[part][SELECTION_METRIC]:>8.4f}")
        for name, by_part in results.get("baselines", {}).items():
            mean, se, _ = results["paired"][name][part][SELECTION_METRIC]
            lines.append(
                f"  {name:<12}{by_part[part][SELECTION_METRIC]:>8.4f}   {format_difference(mean, se)}"
            )
    return "\n".join(lines)
