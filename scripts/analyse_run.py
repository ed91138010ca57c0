"""Where a run's model wins or loses against the item-mean baseline, and what personalisation adds.

    python scripts/analyse_run.py RUN_DIR [--metric ndcg@10]

Loads the run's best checkpoint (JAX or PyTorch) and prints, for the validation and test lists,
the mean per-list metric of: the model; the same model with every user's embedding replaced by
the mean embedding of the users that have a training order (>= 2 training ratings), which
removes personalisation and keeps the learned item scores; and the item mean rating. Rows split
the lists by user (with or without a training order) and by whether a list holds an item that
no training list holds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from jax_ltr import ranking_metrics
from ltr_common import iterate_batches, load_split, per_list_metrics
from ltr_common.baselines import baseline_metrics, item_tables
from ltr_train import load_run_config, make_backend

SCORERS = ("model", "model, mean user", "item mean")


def analyse(run_dir: Path, metric: str = "ndcg@10") -> dict[str, list[dict]]:
    """Per split: rows ``{"group", "lists", <scorer>: mean metric}``."""
    framework, config = load_run_config(Path(run_dir))
    ratings, split = load_split(config)
    trainer = make_backend(framework, config, ratings.num_users, ratings.num_items)
    trainer.restore(Path(run_dir) / "checkpoint_best")
    probe = trainer.batch_metrics(next(iterate_batches(split.test, batch_size=1, shuffle=False)))
    if metric not in probe:
        raise ValueError(f"--metric: expected one of {', '.join(probe)}, got {metric!r}")

    tables = item_tables(split.train, ratings.num_items)
    counts = tables["popularity"]
    train_length = np.zeros(ratings.num_users, np.int64)
    train_length[split.train.users] = split.train.lengths
    ordered = train_length >= 2

    item_mean_metrics = baseline_metrics("item_mean", tables, ranking_metrics, top_k=config.top_k)
    parts = ("validation", "test")
    results = {
        part: {"model": per_list_metrics(trainer.batch_metrics, getattr(split, part))[metric]}
        for part in parts
    }
    users_matrix, _ = trainer.embeddings()
    ablated = np.array(users_matrix, copy=True)
    ablated[:] = users_matrix[ordered].mean(axis=0)
    trainer.set_user_embeddings(ablated)
    rows = {}
    for part in parts:
        lists = getattr(split, part)
        users = lists.users
        unseen = np.add.reduceat(counts[lists.items] == 0, lists.offsets[:-1]) > 0
        scores = results[part]
        scores["model, mean user"] = per_list_metrics(trainer.batch_metrics, lists)[metric]
        scores["item mean"] = per_list_metrics(item_mean_metrics, lists)[metric]
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--metric", default="ndcg@10", help="per-list metric to compare (default ndcg@10)")
    args = parser.parse_args(argv)
    for part, rows in analyse(args.run_dir, args.metric).items():
        print(f"\n{part} {args.metric}\n")
        print("| lists | count | " + " | ".join(SCORERS) + " |")
        print("| --- | ---: |" + " ---: |" * len(SCORERS))
        for row in rows:
            cells = " | ".join(f"{row[s]:.4f}" for s in SCORERS)
            print(f"| {row['group']} | {row['lists']} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
