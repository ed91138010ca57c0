"""A whole training run in a run directory, for either framework.

``<run_dir>/``: ``config.json`` (resolved), ``train.log`` (loguru), ``events.*`` (tensorboardX),
``checkpoint_latest``/``checkpoint_best`` (+ ``.prev``), ``metrics.json`` (validation and test
at the best checkpoint).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from loguru import logger
from tqdm import tqdm

from ltr_common.config import ConfigError, TrainConfig, load_config_file
from ltr_common.data import load_split
from ltr_common.evaluation import metric_order
from ltr_common.files import restore_with_fallback, write_json
from ltr_common.lists import Split
from ltr_common.loop import evaluate_lists, train
from ltr_common.movielens import Ratings
from ltr_train.backends import make_backend


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


def load_run_config(run_dir: Path) -> tuple[str, TrainConfig]:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (it has no config.json)")
    data = load_config_file(path, TrainConfig, allow={"framework"})
    framework = data.pop("framework", "jax")
    return framework, TrainConfig(**data)


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
    """Train, then evaluate the best checkpoint on validation and test; returns ``metrics.json``'s data.

    ``data``: the ratings and their split (default: MovieLens 100K as ``config`` says, through
    ``load_split``); tests pass small synthetic data here.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    sink = logger.add(run_dir / "train.log", level="INFO")
    try:
        # Rewritten on resume too: ``--epochs`` may have been raised (scripts/train.py).
        write_json(run_dir / "config.json", {"framework": framework, **dataclasses.asdict(config)})
        ratings, split = data if data is not None else load_split(config)
        logger.info("ratings from {}: {}; lists:\n{}", ratings.source, len(ratings), split.summary())
        trainer = make_backend(framework, config, ratings.num_users, ratings.num_items)
        logger.info("{} trainer on {}; run directory {}", framework, trainer.devices(), run_dir)
        SummaryWriter = summary_writer_class()
        started = time.perf_counter()
        with SummaryWriter(str(run_dir)) as writer:
            bar = (
                (lambda **kw: tqdm(desc=f"{framework} {config.loss}", unit="step", **kw))
                if progress_bar
                else None
            )
            progress = train(
                config,
                split,
                trainer,
                run_dir,
                writer=writer,
                resume=resume,
                progress_bar=bar,
                after_step=after_step,
            )
        seconds = time.perf_counter() - started
        best = restore_with_fallback(trainer.restore, run_dir / "checkpoint_best")
        results = {
            "framework": framework,
            "best_step": best.get("best_step", progress.best_step),  # of the weights evaluated
            "steps": progress.step,
            "stopped_early": progress.stopped_early,
            "train_seconds": seconds,
            "validation": evaluate_lists(trainer, split.validation, config),
            "test": evaluate_lists(trainer, split.test, config),
        }
        write_json(run_dir / "metrics.json", results)
        return results
    finally:
        logger.remove(sink)


def format_table(results: dict) -> str:
    names = sorted(results["test"], key=metric_order)
    lines = [f"{'split':<11}" + "".join(f"{n:>11}" for n in names)]
    for split in ("validation", "test"):
        lines.append(f"{split:<11}" + "".join(f"{results[split][n]:>11.4f}" for n in names))
    return "\n".join(lines)
