"""A user's top movies from a trained run, beside the movies they rated highest in training.

    python scripts/recommend.py RUN_DIR --user RAW_ID [--k 10]

Scores the whole catalog with the run's best checkpoint (JAX or PyTorch, either task) and
prints the ``k`` best movies the user had not rated by the end of the training period, with
titles, years and genres, next to the user's highest-rated training movies. Titles come from
MovieLens 100K's item file (cached beside the ratings; fetched as they are).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ltr_common import ConfigError, load_split
from ltr_common.movielens import Movies, load_movies
from ltr_common.tasks.retrieve import dense_mask
from ltr_train import load_run_config, make_backend
from ltr_train.cli import USER_ERRORS, error_exit


def recommend(
    run_dir: Path, raw_user: int, k: int = 10
) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """``(recommended, rated)``: the top ``k`` unrated raw item ids with their scores, and the
    user's training ratings, highest first, as ``(raw item id, rating)``."""
    framework, config = load_run_config(run_dir)
    ratings, split = load_split(config)
    matches = np.flatnonzero(ratings.user_raw_ids == raw_user)
    if not matches.size:
        raise ConfigError(
            f"--user: no user with raw id {raw_user} (ids run from "
            f"{ratings.user_raw_ids.min()} to {ratings.user_raw_ids.max()})"
        )
    user = int(matches[0])
    backend = make_backend(framework, config, ratings.num_users, ratings.num_items)
    backend.restore(Path(run_dir) / "checkpoint_best")
    known = split.history("validation")  # everything rated by the end of the training period
    seen = dense_mask(known, ratings.num_users, ratings.num_items)[user]
    scores = backend.catalog_scores(np.array([user], np.int32), history=known)[0]
    scores = np.where(seen, -np.inf, scores)
    top = np.argsort(-scores, kind="stable")[:k]
    mine = known.users == user
    rated = []
    if mine.any():
        index = int(np.flatnonzero(mine)[0])
        items, labels = known.list_at(index)
        order = np.argsort(-labels, kind="stable")
        rated = [(int(ratings.item_raw_ids[items[i]]), float(labels[i])) for i in order]
    recommended = [(int(ratings.item_raw_ids[i]), float(scores[i])) for i in top if np.isfinite(scores[i])]
    return recommended, rated


def format_lists(recommended, rated, movies: Movies, k: int) -> str:
    lines = [f"top {k} unrated movies, by score:"]
    lines += [
        f"  {rank:>2}. {movies.describe(raw)}   (score {score:.3f})"
        for rank, (raw, score) in enumerate(recommended, start=1)
    ]
    lines.append(f"\nrated highest in training ({len(rated)} ratings in all):")
    lines += [f"  {rating:.0f}  {movies.describe(raw)}" for raw, rating in rated[:k]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--user", type=int, required=True, help="the user's raw MovieLens id")
    parser.add_argument("--k", type=int, default=10, help="how many movies to list")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error(f"--k: expected an integer >= 1, got {args.k}")
    try:
        _, config = load_run_config(args.run_dir)
        movies = load_movies(data_dir=config.data_dir, cache_dir=config.cache_dir)  # before scoring
        recommended, rated = recommend(args.run_dir, args.user, args.k)
    except USER_ERRORS as err:
        return error_exit(parser, err)
    print(format_lists(recommended, rated, movies, args.k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
