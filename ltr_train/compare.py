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
from ltr_common.lists import Split
from ltr_common.movielens import Ratings
from ltr_common.stats import paired_difference
from ltr_common.tasks import Scorer, Task, make_task
from ltr_train.backends import framework_package, make_backend

MF_REGULARISATION = (3.0, 10.0, 30.0)


def fit_baselines(
    names, config: TrainConfig, ratings: Ratings, split: Split, metrics
) -> dict[str, baselines.ScoreScorer]:
    """The baselines ``names`` (``ltr_common.baselines.BASELINES``) fit on ``split.train``."""
    unknown = sorted(set(names) - set(baselines.BASELINES))
    if unknown:
        raise ValueError(f"baselines: unknown {unknown}; known: {', '.join(baselines.BASELINES)}")
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
    }

    def scorer(score):
        return baselines.ScoreScorer(score, metrics, top_k=config.top_k, num_items=items)

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
            logger.info("{}: setting {} chosen on validation {}", name, setting, values)
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


HEADLINE = ("ndcg@10", "ndcg@20", "recall@10", "recall@20", "hr@10", "liked/ndcg@10", "mrr", "map")


def check_run(run_dir: Path, task_name: str, refit: bool) -> tuple[str, TrainConfig]:
    """The framework and config of ``run_dir``, checked to be a run of ``task_name`` and ``refit``."""
    from ltr_train.run import load_run_config  # ltr_train.run imports this module

    framework, config = load_run_config(run_dir)
    if config.task != task_name:
        raise ConfigError(
            f"--run: {run_dir} is a --task {config.task} run; this comparison is --task {task_name}"
        )
    if config.refit != refit:
        raise ConfigError(f"--run: {run_dir} has refit={config.refit}; this comparison has --refit {refit}")
    return framework, config


def load_model(run_dir: Path, task_name: str, refit: bool):
    """The best checkpoint of ``run_dir``, checked to be a run of ``task_name``."""
    framework, config = check_run(run_dir, task_name, refit)
    ratings, _ = load_split(config)
    backend = make_backend(framework, config, ratings.num_users, ratings.num_items)
    backend.restore(run_dir / "checkpoint_best")
    return backend


def evaluate_all(task_name: str, refit: bool, names, runs: dict[str, list[Path]]) -> dict:
    """``{part: {label: per-list metrics}}`` for the baselines ``names`` and each run label
    (the mean over its run directories, list by list). Every run is checked (``check_run``)
    before any data is loaded or baseline fitted."""
    for dirs in runs.values():
        for run_dir in dirs:
            check_run(run_dir, task_name, refit)
    config = for_task(task_name, refit=refit)
    ratings, split = load_split(config)
    task = make_task(config, split)
    parts = ("test",) if refit else ("validation", "test")
    scorers = fit_baselines(names, config, ratings, split, framework_package("jax"))
    out = {part: {name: task.per_list(scorer, part) for name, scorer in scorers.items()} for part in parts}
    for label, dirs in runs.items():
        models = [load_model(d, task_name, refit) for d in dirs]
        for part in parts:
            seeds = [task.per_list(model, part) for model in models]
            out[part][label] = {k: np.mean([s[k] for s in seeds], axis=0) for k in seeds[0]}
            out[part][label]["seeds"] = np.array(
                [[np.nanmean(s[k]) for k in HEADLINE if k in s] for s in seeds]
            )
    return out
