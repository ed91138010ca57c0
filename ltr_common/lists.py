"""Per-user ranking lists and the temporal train/validation/test split.

Per user, ratings are ordered by timestamp, ties by the file's row order. The last
``test_size`` ratings form the test list, the ``validation_size`` before them the
validation list, and the rest the training list, truncated to the most recent
``max_list_size``. A user with fewer ratings than that fills test first, then
validation, and has no training list; none is dropped silently: the counts are logged
and returned.

Data without times (``Ratings.timed`` False) is split the same way over an order drawn at
random per user from a fixed seed (``UNTIMED_SPLIT_SEED``, overridable): the held-out ratings
are a random ``test_size`` and ``validation_size`` of each user's, the same for every run of
the same data, so that runs of several training seeds are compared on the same lists.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from loguru import logger

from ltr_common.movielens import Ratings

UNTIMED_SPLIT_SEED = 0
# The split's defaults, which the trainer's configuration (``TrainConfig``) takes as its own.
TEST_SIZE = 10
VALIDATION_SIZE = 10
MAX_LIST_SIZE = 1000


@dataclasses.dataclass(frozen=True)
class Lists:
    """Variable-length lists in compressed form: list ``k`` is ``items[offsets[k]:offsets[k+1]]``.

    Within a list, items stand in time order (oldest first).
    """

    users: np.ndarray  # [K] int32
    offsets: np.ndarray  # [K + 1] int64
    items: np.ndarray  # [total] int32
    labels: np.ndarray  # [total] float32
    timestamps: np.ndarray  # [total] int64
    rows: np.ndarray  # [total] int64, the row of each rating in the source file

    def __len__(self) -> int:
        return len(self.users)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, ids: np.ndarray) -> Lists:
        """The lists ``ids``, in that order."""
        ids = np.asarray(ids, np.int64)
        lengths = self.lengths[ids]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
        source = np.repeat(self.offsets[ids], lengths) + within
        fields = (self.items, self.labels, self.timestamps, self.rows)
        return Lists(self.users[ids], offsets, *(field[source] for field in fields))

    def list_at(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(items, labels) of list ``k``."""
        lo, hi = self.offsets[k], self.offsets[k + 1]
        return self.items[lo:hi], self.labels[lo:hi]


@dataclasses.dataclass(frozen=True)
class Split:
    train: Lists
    validation: Lists
    test: Lists
    counts: dict[str, int]  # how many users each rule touched
    older: Lists | None = None  # ratings before each training list, cut by max_list_size
    num_items: int = 0  # the catalog: item indices 0 .. num_items - 1
    num_users: int = 0

    def history(self, part: str) -> Lists:
        """Every rating a user made before the lists of ``part`` ("validation" or "test"),
        each user's in time order: what a model of that moment may know, and what retrieval
        leaves out of the ranking."""
        pieces = [self.older, self.train] + ([self.validation] if part == "test" else [])
        return concatenate_by_user([p for p in pieces if p is not None], self.num_users)

    def every_rating(self) -> Lists:
        """Every rating of every user, in time order: what serving a model reads and leaves
        out (``export_embeddings.py``, ``recommend.py``)."""
        return concatenate_by_user([self.history("test"), self.test], self.num_users)

    def summary(self) -> str:
        """A small table of list counts and lengths, for the console."""
        lines = [f"{'split':<11}{'lists':>7}{'ratings':>9}{'min len':>9}{'mean len':>10}{'max len':>9}"]
        for name in ("train", "validation", "test"):
            part = getattr(self, name)
            n = part.lengths if len(part) else np.zeros(1, np.int64)
            lines.append(f"{name:<11}{len(part):>7}{n.sum():>9}{n.min():>9}{n.mean():>10.1f}{n.max():>9}")
        lines += [f"{rule}: {count}" for rule, count in self.counts.items()]
        return "\n".join(lines)


def _make_lists(ratings: Ratings, order: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> Lists:
    keep = stops > starts
    starts, stops = starts[keep], stops[keep]
    lengths = stops - starts
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    # Gather positions: for each list, order[start:stop], without a Python loop.
    within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
    rows = order[np.repeat(starts, lengths) + within]
    return Lists(
        users=ratings.users[rows[offsets[:-1]]] if len(rows) else np.zeros(0, np.int32),
        offsets=offsets,
        items=ratings.items[rows],
        labels=ratings.ratings[rows].astype(np.float32),
        timestamps=ratings.timestamps[rows],
        rows=rows,
    )


def temporal_split(
    ratings: Ratings,
    *,
    test_size: int = TEST_SIZE,
    validation_size: int = VALIDATION_SIZE,
    max_list_size: int = MAX_LIST_SIZE,
    seed: int = UNTIMED_SPLIT_SEED,
) -> Split:
    """Split every user's ratings in time: oldest to train, then validation, newest to test.

    Args:
      ratings: validated ratings.
      test_size: ratings per user in the test list (the newest).
      validation_size: ratings per user in the validation list (just before the test ones);
        0 gives them to training (a refit on everything before the test lists).
      max_list_size: a training list keeps at most this many of its newest ratings.
      seed: where the ratings have no times, the seed of each user's random order.

    Returns:
      A ``Split``; ``counts`` says how many users each rule touched.
    """
    for name, value, low in (
        ("test_size", test_size, 1),
        ("validation_size", validation_size, 0),
        ("max_list_size", max_list_size, 1),
    ):
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    row = np.arange(len(ratings))
    if ratings.timed:
        order = np.lexsort((row, ratings.timestamps, ratings.users))  # by user, time, row
    else:  # by user, in a random order
        order = np.lexsort((np.random.default_rng(seed).random(len(ratings)), ratings.users))
    counts = np.bincount(ratings.users, minlength=ratings.num_users)
    stop = np.cumsum(counts)
    start = stop - counts
    test_start = np.maximum(stop - test_size, start)
    validation_start = np.maximum(test_start - validation_size, start)
    train_start = np.maximum(validation_start - max_list_size, start)
    train_len = validation_start - train_start
    rule_counts = {
        "users": int(ratings.num_users),
        "users with fewer than test_size ratings (short test list)": int((counts < test_size).sum()),
        "users with a short or empty validation list": int((counts < test_size + validation_size).sum()),
        "users with no training list (cold: validation/test only)": int((train_len == 0).sum()),
        "users with a 1-rating training list (no order to learn)": int((train_len == 1).sum()),
        "users whose training list was truncated to max_list_size": int(
            (validation_start - start > max_list_size).sum()
        ),
    }
    for rule, count in rule_counts.items():
        logger.debug("split: {}: {}", rule, count)  # the run prints them in its summary
    return Split(
        train=_make_lists(ratings, order, train_start, validation_start),
        validation=_make_lists(ratings, order, validation_start, test_start),
        test=_make_lists(ratings, order, test_start, stop),
        counts=rule_counts,
        older=_make_lists(ratings, order, start, train_start),
        num_items=ratings.num_items,
        num_users=ratings.num_users,
    )


def concatenate_by_user(parts: list[Lists], num_users: int) -> Lists:
    """One list per user holding, in order, that user's items of each of ``parts`` (whose
    lists are each in time order and earlier parts older); users with none are left out."""
    keys, rows = [], []
    for rank, part in enumerate(parts):
        users = np.repeat(part.users, part.lengths)
        within = np.arange(len(part.items)) - np.repeat(part.offsets[:-1], part.lengths)
        keys.append(np.stack([users, np.full(len(users), rank), within]))
        rows.append((part, np.arange(len(part.items))))
    if not keys:
        empty = np.zeros(0, np.int64)
        return Lists(
            np.zeros(0, np.int32),
            np.zeros(1, np.int64),
            empty.astype(np.int32),
            empty.astype(np.float32),
            empty,
            empty,
        )
    key = np.concatenate(keys, axis=1)
    order = np.lexsort((key[2], key[1], key[0]))
    field = lambda name: np.concatenate([getattr(p, name) for p, _ in rows])[order]  # noqa: E731
    users = key[0][order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.zeros(0, np.int64)
    offsets = np.r_[starts, len(users)].astype(np.int64)
    return Lists(
        users=users[starts].astype(np.int32),
        offsets=offsets,
        items=field("items"),
        labels=field("labels"),
        timestamps=field("timestamps"),
        rows=field("rows"),
    )
