"""Where a run's model wins or loses against the item-mean baseline, and what personalisation adds.

    python scripts/analyse_run.py RUN_DIR [--metric ndcg@10]

Loads the run's best checkpoint (JAX or PyTorch) and prints, for the validation and test lists,
the mean per-list metric of: the model; the same model with every user's embedding replaced by
the mean embedding of the users that have a training order (>= 2 training ratings), which
removes personalisation and keeps the learned item scores; and the item mean rating (shrunk
toward the global mean, the prior chosen on validation). Rows split
the lists by user (with or without a training order) and by whether a list holds an item that
no training list holds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ltr_common import ConfigError, iterate_batches
from ltr_common.baselines import popularity
from ltr_common.config import SELECTION_METRIC, ArgumentParser
from ltr_common.evaluation import unscored
from ltr_common.files import restore_with_fallback
from ltr_common.models import SEQUENTIAL
from ltr_train import fit_batch_size, load_run_config, load_run_data, log_to_console, make_backend
from ltr_train.backends import framework_package
from ltr_train.cli import USER_ERRORS, add_moved_data_flag, error_exit, run_script
from ltr_train.compare import fit_baselines

SCORERS = ("model", "model, mean user", "item mean")


def analyse(
    run_dir: Path, metric: str = SELECTION_METRIC, *, data: str | None = None
) -> dict[str, list[dict]]:
    """Per split: rows ``{"group", "lists", <scorer>: mean metric}``; ``data``: where the run's
    ``--data`` table lies now, if it was moved."""
    framework, config = load_run_config(Path(run_dir))
    if config.task != "rerank" or config.refit:
        raise ConfigError(
            f"{run_dir} is a --task {config.task}{' --refit' if config.refit else ''} run; this analysis "
            "is of --task rerank runs with validation lists"
        )
    if config.model in SEQUENTIAL:  # its users are their histories: no embedding to average
        raise ConfigError(
            f"{run_dir} is a --model {config.model} run; this analysis replaces each user's embedding "
            "by the mean one, which a model that reads histories does not have"
        )
    ratings, split = load_run_data(run_dir, config, data=data)
    config, task = fit_batch_size(framework, config, split)  # evaluated in batches of that size
    trainer = make_backend(framework, config, ratings.num_users, ratings.num_items)
    restore_with_fallback(trainer.restore, Path(run_dir) / "checkpoint_best")
    probe, _ = unscored(trainer.batch_metrics(next(iterate_batches(split.test, batch_size=1, shuffle=False))))
    if metric not in probe:
        raise ConfigError(f"--metric: expected one of {', '.join(probe)}, got {metric!r}")

    counts = popularity(split.train, ratings.num_items)
    train_length = np.zeros(ratings.num_users, np.int64)
    train_length[split.train.users] = split.train.lengths
    ordered = train_length >= 2
    if not ordered.any():
        raise ConfigError(
            f"{run_dir}: no user has a training order (two training ratings or more), so there is no "
            "mean user embedding to compare with"
        )

    (item_mean,) = fit_baselines(["item_mean"], config, ratings, split, framework_package(framework)).values()
    parts = ("validation", "test")
    results = {part: {"model": task.per_list(trainer, part)[metric]} for part in parts}
    users_matrix = trainer.weights()["user_embedding"]
    ablated = np.array(users_matrix, copy=True)
    ablated[:] = users_matrix[ordered].mean(axis=0)
    trainer.set_user_embeddings(ablated)
    rows = {}
    for part in parts:
        lists = getattr(split, part)
        users = lists.users
        unseen = np.add.reduceat(counts[lists.items] == 0, lists.offsets[:-1]) > 0
        scores = results[part]
        scores["model, mean user"] = task.per_list(trainer, part)[metric]
        scores["item mean"] = task.per_list(item_mean, part)[metric]
        groups = {
            "all lists": np.ones(len(lists), bool),
            "users with a training order": ordered[users],
            "users with < 2 training ratings": ~ordered[users],
            "lists with an item unseen in training": unseen,
            "training-order users, no unseen item": ordered[users] & ~unseen,
        }
        rows[part] = [
            {"group": name, "lists": int(sel.sum()), **{s: float(scores[s][sel].mean()) for s in SCORERS}}
            for name, sel in groups.items()
            if sel.any()
        ]
    return rows


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument(
        "--metric", default=SELECTION_METRIC, help=f"per-list metric to compare (default {SELECTION_METRIC})"
    )
    add_moved_data_flag(parser)
    args = parser.parse_args(argv)
    try:
        analysis = analyse(args.run_dir, args.metric, data=args.data)
    except USER_ERRORS as err:
        return error_exit(parser, err)
    for part, rows in analysis.items():
        print(f"\n{part} {args.metric}\n")
        print("| lists | count | " + " | ".join(SCORERS) + " |")
        print("| --- | ---: |" + " ---: |" * len(SCORERS))
        for row in rows:
            cells = " | ".join(f"{row[s]:.4f}" for s in SCORERS)
            print(f"| {row['group']} | {row['lists']} | {cells} |")
    return 0


if __name__ == "__main__":
    log_to_console()
    sys.exit(run_script(main))
