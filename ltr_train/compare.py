"""A model beside the baselines on the same lists: their means and the paired differences.

Baselines are fit on the model's training lists only; the item mean's shrinkage and the
rating MF's regularisation are chosen on the validation lists (for a refit, on the split
that has them, then fit again on the refit's training lists).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from loguru import logger

from ltr_common import baselines
from ltr_common.config import SELECTION_METRIC, ConfigError, TrainConfig, for_task
from ltr_common.data import load_split, split_ratings
from ltr_common.evaluation import HEADLINE
from ltr_common.files import restore_with_fallback
from ltr_common.lists import Split
from ltr_common.movielens import Ratings
from ltr_common.stats import paired_difference
from ltr_common.tasks import Scorer, Task, make_task
from ltr_common.tasks.retrieve import counted_mean
from ltr_train.backends import framework_package, make_backend
from ltr_train.runs import check_run_data, load_run_config, moved_data, warn_if_unfinished

MF_REGULARISATION = (3.0, 10.0, 30.0)
# The peers' settings, each grid searched on the validation selection metric
# (``fit_baselines``): EASE's l2; ALS's (factors, regularisation, confidence alpha); BPR's
# (factors, learning rate, regularisation); item-kNN's (neighbours, shrinkage).
EASE_L2 = (50.0, 100.0, 200.0, 300.0, 500.0, 800.0, 1200.0, 2000.0)
ALS_SETTINGS = tuple(
    (factors, reg, alpha)
    for factors in (32, 64, 128)
    for reg in (1.0, 10.0, 100.0)
    for alpha in (0.5, 1.0, 4.0)
)
BPR_SETTINGS = tuple(
    (factors, rate, reg) for factors in (32, 64, 128) for rate in (0.01, 0.05) for reg in (0.001, 0.01)
)
KNN_SETTINGS = tuple(
    (neighbours, shrinkage)
    for neighbours in (20, 50, 100, 200, 400)
    for shrinkage in (0.0, 10.0, 50.0, 100.0)
)


EXTRA_BASELINES = ("als", "bpr")  # fit by the baselines extra's packages: implicit, threadpoolctl


def _extra_missing() -> list[str]:
    missing = []
    try:
        import implicit  # noqa: F401
    except ImportError:
        missing.append("implicit")
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        missing.append("threadpoolctl")
    return missing


def check_installed(names) -> None:
    """Refuse, before any work, baselines among ``names`` whose packages are not installed:
    a ``ConfigError`` naming them, the extra that installs them and the baselines to keep."""
    wanted = [n for n in names if n in EXTRA_BASELINES]
    missing = _extra_missing() if wanted else []
    if missing:
        others = ",".join(n for n in names if n not in EXTRA_BASELINES)
        raise ConfigError(
            f"--baselines: {' and '.join(wanted)} {'needs' if len(wanted) == 1 else 'need'} "
            f"{', '.join(missing)}, not installed: pip install -e '.[baselines]'"
            + (f"; or leave them out: --baselines {others}" if others else "")
        )


def fit_baselines(
    names, config: TrainConfig, ratings: Ratings, split: Split, metrics
) -> dict[str, baselines.ScoreScorer]:
    """The baselines ``names`` (``ltr_common.baselines.BASELINES``) fit on ``split.train``."""
    unknown = sorted(set(names) - set(baselines.BASELINES))
    if unknown:
        raise ValueError(f"baselines: unknown {unknown}; known: {', '.join(baselines.BASELINES)}")
    check_installed(names)
    users, items = ratings.num_users, ratings.num_items
    # name -> (its settings, fit(training lists, setting) -> score function)
    fits = {
        "random": ((None,), lambda train, _: baselines.random_scores(config.seed)),
        "popularity": ((None,), lambda train, _: baselines.item_scores(baselines.popularity(train, items))),
        "item_mean": (
            baselines.PRIORS,
            lambda train, prior: baselines.item_scores(baselines.item_mean(train, items, prior=prior)),
        ),
        "rating_mf": (
            MF_REGULARISATION,
            lambda train, reg: baselines.rating_mf(train, users, items, reg=reg, seed=config.seed),
        ),
        "ease": (EASE_L2, lambda train, l2: baselines.ease(train, users, items, l2=l2)),
        "als": (
            ALS_SETTINGS,
            lambda train, s: baselines.implicit_als(
                train, users, items, factors=s[0], regularization=s[1], alpha=s[2], seed=config.seed
            ),
        ),
        "bpr": (
            BPR_SETTINGS,
            lambda train, s: baselines.implicit_bpr(
                train, users, items, factors=s[0], learning_rate=s[1], regularization=s[2], seed=config.seed
            ),
        ),
        "item_knn": (
            KNN_SETTINGS,
            lambda train, s: baselines.item_knn(train, users, items, neighbours=s[0], shrinkage=s[1]),
        ),
    }

    def scorer(score):
        return baselines.ScoreScorer(
            score,
            metrics,
            top_k=config.top_k,
            num_items=items,
            relevance_threshold=config.relevance_threshold,
        )

    # Settings are chosen on validation lists: this split's, or for a refit the plain split's.
    chosen_on = split if len(split.validation) else split_ratings(ratings, config, refit=False)
    out = {}
    for name in names:
        settings, fit = fits[name]
        setting = settings[0]
        if len(settings) > 1:
            task = make_task(config, chosen_on)
            values = {
                s: task.evaluate(scorer(fit(chosen_on.train, s)), "validation")[SELECTION_METRIC]
                for s in settings
            }
            setting = max(values, key=values.get)
            logger.info(
                "{}: setting {} chosen on validation {} ({:.4f}, best of {})",
                name,
                setting,
                SELECTION_METRIC,
                values[setting],
                len(values),
            )
            logger.debug("{}: validation {} of each setting {}", name, SELECTION_METRIC, values)
        out[name] = scorer(fit(split.train, setting))
    return out


def compare(task: Task, model: Scorer, others: dict[str, Scorer], parts) -> dict:
    """``{"baselines": {name: {part: means}}, "paired": {name: {part: {metric: [mean, se, n]}}}}``:
    each baseline's means, and the model's per-list advantage over it on the same lists."""
    result = {"baselines": {}, "paired": {}}
    for part in parts:
        ours = task.per_list(model, part)
        for name, other in others.items():
            theirs = task.per_list(other, part)
            result["baselines"].setdefault(name, {})[part] = {
                k: float(v[v == v].mean()) if (v == v).any() else float("nan") for k, v in theirs.items()
            }
            result["paired"].setdefault(name, {})[part] = {
                k: list(paired_difference(ours[k], theirs[k])) for k in ours
            }
    return result


def check_run(run_dir: Path, task_name: str, refit: bool) -> tuple[str, TrainConfig]:
    """The framework and config of ``run_dir``, checked to be a run of ``task_name`` and ``refit``."""
    framework, config = load_run_config(run_dir)
    if config.task != task_name:
        raise ConfigError(
            f"--run: {run_dir} is a --task {config.task} run; this comparison is --task {task_name}"
        )
    if config.refit != refit:
        raise ConfigError(f"--run: {run_dir} has refit={config.refit}; this comparison has --refit {refit}")
    return framework, config


def load_model(run_dir: Path, task_name: str, refit: bool, ratings: Ratings):
    """The best checkpoint of ``run_dir``, checked to be a run of ``task_name`` trained on
    ``ratings`` (the data the comparison loaded once for every run)."""
    framework, config = check_run(run_dir, task_name, refit)
    warn_if_unfinished(run_dir)
    check_run_data(run_dir, ratings)
    backend = make_backend(framework, config, ratings.num_users, ratings.num_items)
    restore_with_fallback(backend.restore, run_dir / "checkpoint_best")
    return backend


# What a run's lists are made of: its data, read as it was read, and the split's sizes.
DATA_OPTIONS = (
    "dataset",
    "data",
    "user_column",
    "item_column",
    "rating_column",
    "timestamp_column",
    "delimiter",
    "duplicates",
    "implicit",
    "test_size",
    "validation_size",
    "max_list_size",
)
# What a task's metrics take from the configuration: what is relevant to rerank's MRR, MAP and
# recall. Runs measured otherwise are not compared; the baselines are measured as they are.
MEASURE_OPTIONS = {"rerank": ("relevance_threshold",), "retrieve": ()}
DATA_PLACES = ("data_dir", "cache_dir")  # where that data lies: taken from the first run


def runs_data(task_name: str, refit: bool, runs: dict[str, list[Path]]) -> dict:
    """The data options every run of ``runs`` was trained with (``check_run`` on each), and
    how the task measures them (``MEASURE_OPTIONS``); runs trained on other data, split
    otherwise or measured otherwise cannot be compared list by list."""
    configs = [(d, check_run(d, task_name, refit)[1]) for dirs in runs.values() for d in dirs]
    if not configs:
        return {}
    first_dir, first = configs[0]
    shared = (*DATA_OPTIONS, *MEASURE_OPTIONS[task_name])
    for run_dir, config in configs[1:]:
        for name in shared:
            if getattr(config, name) != getattr(first, name):
                raise ConfigError(
                    f"--run: {run_dir} and {first_dir} were trained on other lists, or are measured "
                    f"otherwise ({name}: {getattr(config, name)!r} and {getattr(first, name)!r})"
                )
    return {name: getattr(first, name) for name in (*shared, *DATA_PLACES)}


def evaluate_all(
    task_name: str, refit: bool, names, runs: dict[str, list[Path]], data: dict | None = None
) -> dict:
    """``{part: {label: per-list metrics}}`` for the baselines ``names`` and each run label
    (the mean over its run directories, list by list), on the runs' own data (``runs_data``),
    or without runs on ``data`` (``TrainConfig`` data options; default MovieLens 100K). Every
    run is checked before any data is loaded or baseline fitted."""
    check_installed(names)  # before the data is read (fit_baselines checks for its other callers)
    from_runs = runs_data(task_name, refit, runs)
    moved = None
    if from_runs and data:
        if set(data) != {"data"}:
            name = next(iter(data))
            what = "setting" if name in MEASURE_OPTIONS[task_name] else "data"
            raise ConfigError(f"--{name}: the {what} is the runs' own; give it without --run")
        moved = data["data"]  # where the runs' table lies now: each run's data.json checks it
    config = for_task(task_name, refit=refit, **(from_runs or data or {}))
    if from_runs:
        config = moved_data(next(d for dirs in runs.values() for d in dirs), config, moved)
    ratings, split = load_split(config)
    task = make_task(config, split)
    columns = evaluation_columns(task_name, refit)
    scorers = fit_baselines(names, config, ratings, split, framework_package("jax"))
    out = {
        column: {name: task.per_list(scorer, part, history=shown) for name, scorer in scorers.items()}
        for column, (part, shown) in columns.items()
    }
    for label, dirs in runs.items():
        models = [load_model(d, task_name, refit, ratings) for d in dirs]
        for column, (part, shown) in columns.items():
            seeds = [task.per_list(model, part, history=shown) for model in models]
            out[column][label] = {k: np.mean([s[k] for s in seeds], axis=0) for k in seeds[0]}
            out[column][label]["seeds"] = np.array(
                [[counted_mean(s[k]) for k in HEADLINE if k in s] for s in seeds]
            )
    return out


TRAINING_HISTORY = "test, training history only"


def evaluation_columns(task_name: str, refit: bool) -> dict[str, tuple[str, str]]:
    """``{column: (part, history shown)}`` a comparison reports: validation (not for a refit)
    and test, each with every rating before it shown to history-reading scorers; for
    retrieval also test with the training ratings alone, as if validation had not happened
    (``RetrieveTask.history``)."""
    columns = {} if refit else {"validation": ("validation", "all")}
    columns["test"] = ("test", "all")
    if task_name == "retrieve" and not refit:
        columns[TRAINING_HISTORY] = ("test", "train")
    return columns
