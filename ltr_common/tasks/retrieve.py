"""Retrieval: rank the whole catalog for each user; the user's held-out items are relevant.

Training lists are a user's training ratings (labels 1..5) plus ``--negatives`` items the user
had not rated by the end of the training period (label 0), drawn anew for every batch from
``(seed, epoch, batch)`` in NumPy, so both frameworks see the same lists. Every loss applies
unchanged: ListMLE ranks the rated items above the sampled ones, pairwise PL on (rated,
sampled) pairs is BPR. Items rated later (validation, test) can be drawn: at training time
they are not known to be liked.

With the sequence model (``--model sequence``) a training step is a batch of users instead:
each slot of a user's training history is a list of the items that followed it, against
``--negatives`` sampled items the user never rated in training, or against every item not
rated by then (``--negatives 0``; ``ltr_common.sequences``). The model reads the history
the evaluation shows it: for validation the training ratings, for test those and the
validation ratings (or, as a second column, the training ratings alone).

Evaluation on a validation or test list: every item the user rated before it is left out of
the ranking (the training list, the older ratings ``max_list_size`` cut from it, and for test
the validation list), the rest of the catalog is ranked by score, and the list's items are
the relevant ones — ``recall@k``, ``ndcg@k`` (binary gains, ideal ``min(k, relevant)``) and
``hr@k`` from ``retrieval_metrics``; the ``liked/`` metrics count only ratings of 4 and 5 (and
are left out for data that has none, such as implicit feedback). A
user with nothing relevant is left out of a mean, and counted (``counts``).

The catalog is scored ``CATALOG_ENTRIES // num_items`` users at a time, each chunk's masks
built from per-user item sets (``UserItems``): memory is bounded whatever the number of
users, and no [users, items] array is ever made (943 x 1,682 fits in one chunk).
"""

from __future__ import annotations

import math

import numpy as np

from ltr_common.batching import Batch
from ltr_common.config import ConfigError, TrainConfig
from ltr_common.evaluation import check_scored, unscored
from ltr_common.lists import Lists, Split
from ltr_common.models import SEQUENTIAL
from ltr_common.sequences import trainable
from ltr_common.tasks.base import (
    NEGATIVE_STREAM,
    Scorer,
    check_split,
    require_sequences,
    sequence_inputs,
    training_inputs,
)

LIKED = 4.0  # the rating from which a held-out item counts in the liked/ report
HISTORIES = ("all", "train")  # what a history-reading scorer is shown (``RetrieveTask.history``)
CATALOG_ENTRIES = 1 << 24  # users x items scored at once: 64 MB of float32 scores
# Negatives of catalogs up to this size are drawn from a dense [batch, items] array of keys
# (ML-100K, ML-1M: the draws all runs so far were made with); larger catalogs draw per
# user from the unrated items (``UserItems.sample_unrated``), O(negatives) per list instead
# of O(items). Both are uniform over the sets of distinct unrated items.
DENSE_DRAW_MAX_ITEMS = 4096


def counted_mean(per_list: np.ndarray) -> float:
    """The mean over the lists that count (not NaN); NaN where none does (a ``liked/`` metric
    of a split without a rating of 4 or more), without NumPy's warning of an empty mean."""
    counted = per_list[~np.isnan(per_list)]
    return float(counted.mean()) if len(counted) else math.nan


class UserItems:
    """Each user's items of ``lists`` (where ``keep``), as a compressed row per user."""

    def __init__(self, lists: Lists, num_users: int, keep=None):
        users = np.repeat(lists.users, lists.lengths)
        items = lists.items
        if keep is not None:
            users, items = users[keep], items[keep]
        order = np.lexsort((items, users))
        self.counts = np.bincount(users, minlength=num_users).astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])
        self.items = items[order]
        # item - (its place among the user's items) + user * 2^31 (above any item index): one
        # non-decreasing array in which the j-th unrated item of any user is found by bisection
        starts = np.repeat(self.offsets[:-1], self.counts)
        self._unrated_steps = self.items.astype(np.int64) - (np.arange(len(self.items)) - starts)
        self._unrated_steps += np.repeat(np.arange(num_users, dtype=np.int64), self.counts) << 31

    def sample_unrated(self, users: np.ndarray, count: int, num_items: int, rng: np.random.Generator):
        """[len(users), count] int64: for each user, ``count`` distinct items in ``0 ..
        num_items - 1`` that are not the user's, uniformly over such sets (``users`` -1:
        any items). Each user must have ``count`` unrated items.

        Draws ``count`` places among the user's unrated items and redraws repeated places
        until none repeats (sequential sampling without replacement: every set of distinct
        places is equally likely), then maps the j-th unrated place to its item, ``j`` plus
        the number of the user's items ``i`` with ``i - (i's place) <= j``. Work and memory
        grow with ``count`` per user, not with the catalog.
        """
        users = np.asarray(users, np.int64)
        real = users >= 0
        rated = np.where(real, self.counts[np.maximum(users, 0)], 0)
        free = (num_items - rated)[:, None]
        if (free < count).any():
            raise ValueError(f"a user has fewer than {count} unrated items of {num_items}")
        places = np.minimum((rng.random((len(users), count)) * free).astype(np.int64), free - 1)
        rows = np.arange(len(users))[:, None]
        while True:
            order = np.argsort(places, axis=1, kind="stable")  # equal places: first drawn first
            ordered = places[rows, order]
            repeated = np.zeros(places.shape, bool)
            repeated[rows, order[:, 1:]] = ordered[:, 1:] == ordered[:, :-1]
            if not repeated.any():
                break
            fresh = np.minimum((rng.random(places.shape) * free).astype(np.int64), free - 1)
            places = np.where(repeated, fresh, places)
        base = np.where(real, users, 0)[:, None] << 31
        before = np.searchsorted(self._unrated_steps, base + places, side="right")
        before -= np.where(real, self.offsets[np.maximum(users, 0)], len(self._unrated_steps))[:, None]
        return places + np.where(real[:, None], before, 0)

    def dense(self, users: np.ndarray, num_items: int) -> np.ndarray:
        """[len(users), num_items] bool: True at each item of each of ``users``."""
        lengths = self.counts[users]
        starts = np.repeat(self.offsets[users] - np.cumsum(lengths) + lengths, lengths)
        mask = np.zeros((len(users), num_items), bool)
        mask[np.repeat(np.arange(len(users)), lengths), self.items[starts + np.arange(lengths.sum())]] = True
        return mask


def dense_mask(lists: Lists, num_users: int, num_items: int, keep=None) -> np.ndarray:
    """[num_users, num_items] bool: True at each (user, item) of ``lists`` (where ``keep``)."""
    return UserItems(lists, num_users, keep).dense(np.arange(num_users), num_items)


class RetrieveTask:
    name = "retrieve"

    def __init__(self, config: TrainConfig, split: Split):
        check_split(config, split)
        self.config, self.split = config, split
        self.num_users, self.num_items = split.num_users, split.num_items
        self._sets: dict[str, tuple[UserItems, UserItems, UserItems]] = {}
        self._histories: dict[str, Lists] = {}
        # the liked/ report where the data grades anything "liked" (not implicit feedback)
        graded = any((p.labels >= LIKED).any() for p in (split.train, split.test))
        self.reports = ("", "liked/") if graded else ("",)
        # Everything rated up to the end of the training lists, never drawn as a negative:
        # what validation leaves out of its ranking.
        self.known = self._user_items("validation")[2]
        known = self.known.counts[split.train.users]
        unrated = self.num_items - int(known.max()) if len(known) else self.num_items
        if config.negatives > unrated:
            raise ConfigError(
                f"--negatives: {config.negatives} sampled items per list, but the user who rated the "
                f"most ({int(known.max())} items by the end of training) has only {unrated} of the "
                f"{self.num_items} items left unrated; use at most {unrated}"
            )
        if self.sequential:
            require_sequences(config, self.history("validation"))

    @property
    def sequential(self) -> bool:
        return self.config.model in SEQUENTIAL

    def training_lists(self) -> int:
        return len(self._sequence_lists()) if self.sequential else len(self.split.train)

    def steps_per_epoch(self) -> int:
        return -(-self.training_lists() // self.config.batch_size)

    def _sequence_lists(self) -> Lists:
        """Every user's training ratings in time order, those with a next item to learn."""
        if not hasattr(self, "_sequences"):
            self._sequences = trainable(self.history("validation"))
        return self._sequences

    def sample_negatives(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """[B, negatives] distinct items each user (index, -1 for none) had not rated: uniform."""
        count = self.config.negatives
        if self.num_items > DENSE_DRAW_MAX_ITEMS:
            return self.known.sample_unrated(users, count, self.num_items, rng).astype(np.int32)
        keys = rng.random((len(users), self.num_items), dtype=np.float32)
        rated = self.known.dense(np.maximum(users, 0), self.num_items) & (users >= 0)[:, None]
        keys[rated] = 2.0  # above every draw: never chosen
        return np.argpartition(keys, count - 1, axis=1)[:, :count].astype(np.int32)

    def with_negatives(self, batch: Batch, *, epoch: int, index: int) -> Batch:
        """``batch`` with ``negatives`` sampled items (label 0) appended to every real list."""
        rng = np.random.default_rng([self.config.seed, epoch, index, NEGATIVE_STREAM])
        real = batch.list_ids >= 0
        users = np.where(real, batch.user_ids, -1)
        negatives = self.sample_negatives(users, rng)
        shape = negatives.shape
        return batch._replace(
            item_ids=np.concatenate([batch.item_ids, np.where(real[:, None], negatives, 0)], axis=1),
            labels=np.concatenate([batch.labels, np.zeros(shape, batch.labels.dtype)], axis=1),
            mask=np.concatenate([batch.mask, np.broadcast_to(real[:, None], shape)], axis=1),
        )

    def epoch_inputs(self, *, epoch: int, start_batch: int = 0):
        if self.sequential:
            sampler = self.sample_negatives if self.config.negatives else None
            lists = self._sequence_lists()
            return sequence_inputs(
                self.config, lists, self.num_items, epoch=epoch, start_batch=start_batch, negatives=sampler
            )
        return training_inputs(
            self.config, self.split.train, epoch=epoch, start_batch=start_batch, extend=self.with_negatives
        )

    def _user_items(self, part: str) -> tuple[UserItems, UserItems, UserItems]:
        """``(relevant, liked, exclude)`` item sets of every user, for ``part``."""
        if part not in self._sets:
            target = getattr(self.split, part)
            self._sets[part] = (
                UserItems(target, self.num_users),
                UserItems(target, self.num_users, keep=target.labels >= LIKED),
                UserItems(self.history(part), self.num_users),
            )
        return self._sets[part]

    def masks(self, part: str, users: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(relevant, liked, exclude)``, each [len(users), num_items] bool, for ``part``
        (``users``: every user by default)."""
        users = np.arange(self.num_users) if users is None else users
        return tuple(sets.dense(users, self.num_items) for sets in self._user_items(part))

    def chunks(self) -> list[np.ndarray]:
        """The users, ``CATALOG_ENTRIES // num_items`` at a time (int32 index arrays)."""
        size = max(1, CATALOG_ENTRIES // self.num_items)
        return [
            np.arange(start, min(start + size, self.num_users), dtype=np.int32)
            for start in range(0, self.num_users, size)
        ]

    def history(self, part: str, seen: str = "all") -> Lists:
        """The ratings a history-reading scorer is shown before ``part``: "all" of them, or
        the "train"ing ones only (for test: not the validation ratings)."""
        if seen not in HISTORIES:
            raise ValueError(f"history must be one of {', '.join(HISTORIES)}, got {seen!r}")
        before = "validation" if seen == "train" else part
        if before not in self._histories:  # made once: every evaluation of a part shows the same
            self._histories[before] = self.split.history(before)
        return self._histories[before]

    def per_list(self, scorer: Scorer, part: str, *, history: str = "all") -> dict[str, np.ndarray]:
        shown = self.history(part, history)
        out: dict[str, list[np.ndarray]] = {}
        flags = []
        for users in self.chunks():
            relevant, liked, exclude = self.masks(part, users)
            reports = {"": relevant, "liked/": liked}
            reports = {prefix: reports[prefix] for prefix in self.reports}
            metrics, scored = unscored(scorer.catalog_metrics(users, reports, exclude, shown))
            flags.append(scored)
            for k, v in metrics.items():
                out.setdefault(k, []).append(np.asarray(v, np.float64))
        check_scored(flags, "users")
        return {k: np.concatenate(v) for k, v in out.items()}

    def evaluate(self, scorer: Scorer, part: str, *, history: str = "all") -> dict[str, float]:
        return {k: counted_mean(v) for k, v in self.per_list(scorer, part, history=history).items()}

    def counts(self, part: str) -> dict[str, int]:
        relevant, liked, _ = self._user_items(part)
        users, users_liked = int((relevant.counts > 0).sum()), int((liked.counts > 0).sum())
        return {"lists": users, "left out": self.num_users - users, "liked lists": users_liked}
