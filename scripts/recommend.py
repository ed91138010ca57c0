"""Top items for users of a trained run, beside the items each rated highest.

    python scripts/recommend.py RUN_DIR --user RAW_ID [RAW_ID ...] [--k 10] [--out recs.csv]
    python scripts/recommend.py RUN_DIR --all --out recs.csv [--k 10]

Loads the run's best checkpoint once (JAX or PyTorch, either task), then scores the whole
catalog for the users a chunk at a time, and keeps the ``k`` best items each has not rated.
What a user has rated (``--history``): every rating of the data by default, what
``export_embeddings.py`` reads too; ``--history training`` takes only those before the run's
validation lists, as the run's own metrics saw the user, so that its held-out ratings may
be recommended. A sequence model reads that history. The data is the run's own (its
``config.json``, checked against its ``data.json``; ``--data`` where its table lies now, if
moved): a MovieLens release gives titles, years and genres; a ``--data`` table gives raw
item ids.

Printed per user: the top ``k`` with their scores and the user's highest-rated items. A
cold user is marked so: the model learned nothing of them (a dot or MLP user with no
training ratings keeps its initial vector; the sequence model reads an empty history), so
their list is the model's guess for anyone. ``--out FILE.csv`` writes ``user, rank, item,
score, cold`` (and ``title`` where the data has titles) for every listed user instead,
written whole or not at all; ``--all`` lists every user of the data. A model whose scores
are NaN or infinite (a run that diverged) is refused.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

from ltr_common import ConfigError
from ltr_common.config import ArgumentParser
from ltr_common.data import load_movies_for
from ltr_common.files import CheckpointError, atomic_write_text, restore_with_fallback
from ltr_common.models import SEQUENTIAL
from ltr_common.movielens import Movies
from ltr_common.tasks.retrieve import CATALOG_ENTRIES, UserItems
from ltr_train import load_run_config, load_run_data, log_to_console, make_backend
from ltr_train.cli import (
    USER_ERRORS,
    add_moved_data_flag,
    ensure_folder,
    error_exit,
    remove_made_folders,
    run_script,
)


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


HISTORIES = ("all", "training")  # --history


class Recommender:
    """A run's best model with its data, loaded once, for any number of users.

    ``history``: what each user has rated, which a sequence model reads and which is never
    recommended: "all" the data's ratings (what ``export_embeddings.py`` reads), or those
    before the validation lists ("training": the run's held-out ratings may then be
    recommended, as its test metrics score them)."""

    def __init__(self, run_dir: Path, *, data: str | None = None, history: str = "all"):
        if history not in HISTORIES:
            raise ConfigError(f"--history: expected one of {', '.join(HISTORIES)}, got {history!r}")
        framework, config = load_run_config(run_dir)
        self.run_dir, self.history = Path(run_dir), history
        self.ratings, split = load_run_data(run_dir, config, data=data)
        self.backend = make_backend(framework, config, self.ratings.num_users, self.ratings.num_items)
        restore_with_fallback(self.backend.restore, self.run_dir / "checkpoint_best")
        training = split.history("validation")  # the ratings before the validation lists
        self.known = split.every_rating() if history == "all" else training
        self.rated_sets = UserItems(self.known, self.ratings.num_users)
        # Cold: the model learned nothing of the user (no training ratings), or, for a model
        # that reads the history, it reads an empty one.
        self._cold = (
            self.rated_sets if config.model in SEQUENTIAL else UserItems(training, self.ratings.num_users)
        )
        self.num_items = self.ratings.num_items

    def users(self, raw_users) -> np.ndarray:
        return np.array([find_user(self.ratings.user_raw_ids, str(u).strip()) for u in raw_users], np.int32)

    def cold(self, users: np.ndarray) -> np.ndarray:
        """Whether the model knows nothing of each user (``__init__``)."""
        return self._cold.counts[users] == 0

    def top(self, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(items, scores)`` [len(users), min(k, items)]: each user's ``k`` best unrated item
        indices, best first (-1 and -inf past the user's unrated items: no user has more than
        the catalog), scored ``CATALOG_ENTRIES // items`` users at a time."""
        size = max(1, CATALOG_ENTRIES // self.num_items)
        k = min(k, self.num_items)
        items = np.full((len(users), k), -1, np.int64)
        scores = np.full((len(users), k), -np.inf, np.float32)
        for start in range(0, len(users), size):
            chunk = users[start : start + size]
            catalog = np.array(self.backend.catalog_scores(chunk, history=self.known), np.float32)
            diverged = np.flatnonzero(~np.isfinite(catalog).all(axis=1))
            if len(diverged):  # -inf marks a rated item below; NaN has no order
                raw = self.ratings.user_raw_ids[chunk[diverged[0]]].item()
                raise CheckpointError(
                    f"{self.run_dir / 'checkpoint_best'}: the model scores items of user {raw!r} "
                    "as NaN or infinite, so it cannot rank them: the run diverged; train it again "
                    "with a lower --learning_rate"
                )
            catalog[self.rated_sets.dense(chunk, self.num_items)] = -np.inf
            best = np.argpartition(-catalog, k - 1, axis=1)[:, :k]
            best_scores = np.take_along_axis(catalog, best, axis=1)
            order = np.lexsort((best, -best_scores), axis=1)  # by score, ties by item index
            best, best_scores = np.take_along_axis(best, order, 1), np.take_along_axis(best_scores, order, 1)
            unrated = np.isfinite(best_scores)
            items[start : start + len(chunk)] = np.where(unrated, best, -1)
            scores[start : start + len(chunk)] = best_scores
        return items, scores

    def listed(self, items: np.ndarray, scores: np.ndarray) -> list[tuple]:
        """One row of ``top`` as ``(raw item id, score)`` pairs."""
        raw = self.ratings.item_raw_ids
        return [(raw[i].item(), float(s)) for i, s in zip(items, scores, strict=True) if i >= 0]

    def rated(self, user: int) -> list[tuple]:
        """The user's ratings in ``history``, highest first, as ``(raw item id, rating)``."""
        mine = np.flatnonzero(self.known.users == user)
        if not len(mine):
            return []
        items, labels = self.known.list_at(int(mine[0]))
        order = np.argsort(-labels, kind="stable")
        raw = self.ratings.item_raw_ids
        return [(raw[items[i]].item(), float(labels[i])) for i in order]


def recommend(
    run_dir: Path, raw_user, k: int = 10, *, history: str = "all", data: str | None = None
) -> tuple[list[tuple], list[tuple]]:
    """``(recommended, rated)`` for one user: the top ``k`` unrated raw item ids with their
    scores, and the user's ratings, highest first, as ``(raw item id, rating)``."""
    model = Recommender(run_dir, history=history, data=data)
    user = model.users([raw_user])
    items, scores = model.top(user, k)
    return model.listed(items[0], scores[0]), model.rated(int(user[0]))


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def describe_item(movies: Movies | None, raw) -> str:
    """An item as printed: its id, and its title, year and genres where the data has them
    (two movies may share a title)."""
    return f"item {raw!r}" if movies is None else f"{movies.describe(raw)} (item {raw})"


def format_lists(
    recommended,
    rated,
    movies: Movies | None,
    k: int,
    *,
    user=None,
    cold=False,
    history: str = "all",
    implicit: bool = False,
) -> str:
    head = f"user {user}: " if user is not None else ""
    if cold:
        head += "cold user (no ratings in training: the model knows nothing of them); "
    shown = f"top {k}" if len(recommended) == k else f"all {len(recommended)}"
    lines = [f"{head}{shown} unrated items, by score:"]
    lines += [
        f"  {rank:>2}. {describe_item(movies, raw)}   (score {score:.3f})"
        for rank, (raw, score) in enumerate(recommended, start=1)
    ]
    when = " in training" if history == "training" else ""
    count = f"{plural(len(rated), 'rating')} in all"
    if not rated:
        lines.append(f"\nno ratings{when}")
    elif implicit:  # every rating 1: the items alone
        lines.append(f"\nrated{when} ({count}; implicit feedback, no grades):")
        lines += [f"  {describe_item(movies, raw)}" for raw, _ in rated[:k]]
    else:
        lines.append(f"\nrated highest{when} ({count}):")
        lines += [f"  {rating:g}  {describe_item(movies, raw)}" for raw, rating in rated[:k]]
    return "\n".join(lines)


def recommendations_csv(
    model: Recommender, users: np.ndarray, k: int, movies: Movies | None
) -> tuple[str, int]:
    """Every user's top ``k`` as CSV rows (user, rank, item, score, cold[, title]), and how
    many rows."""
    items, scores = model.top(users, k)
    cold = model.cold(users)
    user_raw, item_raw = model.ratings.user_raw_ids, model.ratings.item_raw_ids
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["user", "rank", "item", "score", "cold"] + (["title"] if movies is not None else []))
    for row, user in enumerate(users):
        for rank in range(k):
            item = items[row, rank]
            if item < 0:
                break
            raw = item_raw[item].item()
            line = [user_raw[user].item(), rank + 1, raw, f"{scores[row, rank]:.6g}", bool(cold[row])]
            writer.writerow(line + ([movies.describe(raw)] if movies is not None else []))
    return out.getvalue(), int((items >= 0).sum())


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", nargs="+", help="raw user ids, as the data writes them")
    who.add_argument("--all", action="store_true", help="every user of the data (with --out)")
    parser.add_argument("--k", type=int, default=10, help="how many items per user (default: 10)")
    parser.add_argument("--out", type=Path, default=None, help="write a CSV here instead of printing")
    parser.add_argument(
        "--history",
        choices=HISTORIES,
        default="all",
        help="what each user has rated, which is never recommended and which a sequence model "
        "reads: every rating of the data (default, as export_embeddings.py reads), or those "
        "before the run's validation lists (its held-out ratings may then be recommended)",
    )
    add_moved_data_flag(parser)
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error(f"--k: expected an integer >= 1, got {args.k}")
    if args.all and args.out is None:
        parser.error("--all: give --out FILE.csv (every user's list is written, not printed)")
    made = []
    try:
        _, config = load_run_config(args.run_dir)
        if args.out is not None:
            if args.out.is_dir():
                raise ConfigError(f"--out: {args.out} is a folder; give a file name such as recs.csv")
            made = ensure_folder(args.out.parent, "--out")  # before scoring; taken away if that fails
        movies = load_movies_for(config)  # before scoring
        model = Recommender(args.run_dir, data=args.data, history=args.history)
        users = np.arange(model.ratings.num_users, dtype=np.int32) if args.all else model.users(args.user)
        k = min(args.k, model.ratings.num_items)  # what top gives at most, for the count below
        if args.out is not None:
            text, rows = recommendations_csv(model, users, k, movies)
            atomic_write_text(args.out, text)
            fewer = f" (at most {k}: fewer where a user has rated the rest)" if rows < k * len(users) else ""
            print(f"wrote {plural(rows, 'item')} for {plural(len(users), 'user')}{fewer} to {args.out}")
            return 0
        items, scores = model.top(users, k)
        for row, user in enumerate(users):
            text = format_lists(
                model.listed(items[row], scores[row]),
                model.rated(int(user)),
                movies,
                args.k,  # the k asked for: fewer shown says all are
                user=model.ratings.user_raw_ids[user].item() if len(users) > 1 else None,
                cold=bool(model.cold(users[row : row + 1])[0]),
                history=args.history,
                implicit=model.ratings.implicit,
            )
            print(("\n" if row else "") + text)
    except USER_ERRORS as err:
        remove_made_folders(made)
        return error_exit(parser, err)
    return 0


if __name__ == "__main__":
    log_to_console()
    sys.exit(run_script(main))
