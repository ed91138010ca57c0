"""A user's top items from a trained run, beside the items they rated highest in training.

    python scripts/recommend.py RUN_DIR --user RAW_ID [--k 10]

Scores the whole catalog with the run's best checkpoint (JAX or PyTorch, either task) and
prints the ``k`` best items the user had not rated by the end of the training period next to
the user's highest-rated training items. The data is the run's own (its ``config.json``): a
MovieLens release lists titles, years and genres (from its movies file, fetched and cached
as the ratings are); a ``--data`` table lists the raw item ids.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ltr_common import ConfigError
from ltr_common.data import load_movies_for
from ltr_common.movielens import Movies
from ltr_train import load_run_config, load_run_data, make_backend
from ltr_train.cli import USER_ERRORS, error_exit


def find_user(raw_ids: np.ndarray, raw_user: str) -> int:
    """The index of the user whose raw id reads ``raw_user`` (ids may be integers or strings)."""
    if raw_ids.dtype.kind in "iu":
        try:
            wanted = int(raw_user)
        except ValueError:
            wanted = None
    else:
        wanted = raw_user
    index = int(np.searchsorted(raw_ids, wanted)) if wanted is not None else len(raw_ids)
    if index == len(raw_ids) or raw_ids[index] != wanted:
        raise ConfigError(
            f"--user: no user with raw id {raw_user!r} (the {len(raw_ids)} ids run from "
            f"{raw_ids[0].item()!r} to {raw_ids[-1].item()!r})"
        )
    return index


def recommend(run_dir: Path, raw_user, k: int = 10) -> tuple[list[tuple], list[tuple]]:
    """``(recommended, rated)``: the top ``k`` unrated raw item ids with their scores, and the
    user's training ratings, highest first, as ``(raw item id, rating)``."""
    framework, config = load_run_config(run_dir)
    ratings, split = load_run_data(run_dir, config)
    user = find_user(ratings.user_raw_ids, str(raw_user))
    backend = make_backend(framework, config, ratings.num_users, ratings.num_items)
    backend.restore(Path(run_dir) / "checkpoint_best")
    known = split.history("validation")  # everything rated by the end of the training period
    mine = np.flatnonzero(known.users == user)
    items, labels = known.list_at(int(mine[0])) if len(mine) else (np.zeros(0, np.int32), np.zeros(0))
    scores = np.array(backend.catalog_scores(np.array([user], np.int32), history=known)[0])
    scores[items] = -np.inf
    top = np.argsort(-scores, kind="stable")[:k]
    order = np.argsort(-labels, kind="stable")
    raw = ratings.item_raw_ids.tolist()
    rated = [(raw[items[i]], float(labels[i])) for i in order]
    recommended = [(raw[i], float(scores[i])) for i in top if np.isfinite(scores[i])]
    return recommended, rated


def format_lists(recommended, rated, movies: Movies | None, k: int) -> str:
    describe = movies.describe if movies is not None else (lambda raw: f"item {raw}")
    lines = [f"top {k} unrated items, by score:"]
    lines += [
        f"  {rank:>2}. {describe(raw)}   (score {score:.3f})"
        for rank, (raw, score) in enumerate(recommended, start=1)
    ]
    lines.append(f"\nrated highest in training ({len(rated)} ratings in all):")
    lines += [f"  {rating:g}  {describe(raw)}" for raw, rating in rated[:k]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--user", required=True, help="the user's raw id, as the data writes it")
    parser.add_argument("--k", type=int, default=10, help="how many items to list")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error(f"--k: expected an integer >= 1, got {args.k}")
    try:
        _, config = load_run_config(args.run_dir)
        movies = load_movies_for(config)  # before scoring
        recommended, rated = recommend(args.run_dir, args.user, args.k)
    except USER_ERRORS as err:
        return error_exit(parser, err)
    print(format_lists(recommended, rated, movies, args.k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
