"""What every task shares: the protocols of a task and of what it evaluates, and the random
inputs of a training batch."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Protocol

import numpy as np

from ltr_common.batching import Batch, epoch_order, iterate_batches
from ltr_common.config import ConfigError, TrainConfig
from ltr_common.lists import Lists, Split
from ltr_common.losses import LOSSES
from ltr_common.models import SEQUENTIAL
from ltr_common.pairs import sample_pairs
from ltr_common.sequences import SequenceBatch, check_ratings, sequence_batch, sequence_width, slots

NEGATIVE_STREAM = 0x4E47  # a seed word of its own: the negatives' draws are not the pairs'


class Scorer(Protocol):
    """Anything a task can evaluate: a trained model (a ``Backend``) or a baseline."""

    def batch_metrics(self, batch: Batch, history: Lists | None = None) -> Mapping[str, object]:
        """Per-list ``ranking_metrics`` [B] of the lists of a padded batch; ``history``, for a
        scorer that reads it (a sequence model), every user's ratings known at that moment."""

    def catalog_metrics(
        self, users: np.ndarray, reports: Mapping[str, np.ndarray], exclude: np.ndarray, history: Lists
    ) -> Mapping[str, object]:
        """Per-user ``retrieval_metrics`` [U] over the whole catalog, scored once, for each
        relevance mask of ``reports`` (``{name prefix: [U, num_items] bool}``), the metric names
        prefixed; ``exclude`` [U, num_items] bool. ``history``: every user's ratings known at
        that moment, one list per user in time order (``Split.history``), for a scorer that
        reads them (a sequence model, EASE, item-kNN, ALS fold-in); others ignore it."""


class Task(Protocol):
    """What a training list is, and how a model is evaluated. One module per task."""

    name: str

    def training_lists(self) -> int:
        """How many lists an epoch trains on."""

    def steps_per_epoch(self) -> int: ...

    def epoch_inputs(self, *, epoch: int, start_batch: int = 0) -> Iterator[tuple[Batch, object]]:
        """``(batch, pairs)`` for each training step of ``epoch`` from ``start_batch``."""

    def per_list(self, scorer: Scorer, part: str, *, history: str = "all") -> dict[str, np.ndarray]:
        """Each evaluated list's metrics on ``part`` ("validation" or "test"); NaN where a list
        does not count (a user with nothing relevant). ``history``: what a history-reading
        scorer is shown, "all" ratings before ``part`` or only the "train"ing ones (for test,
        without the validation ratings)."""

    def evaluate(self, scorer: Scorer, part: str, *, history: str = "all") -> dict[str, float]:
        """The mean of each metric over the lists of ``part`` that count."""

    def counts(self, part: str) -> dict[str, int]:
        """How many lists of ``part`` count, and how many are left out."""


def check_split(config: TrainConfig, split: Split) -> None:
    """Refuse, before any work, a split the run cannot train on: no training lists
    (``require_training_lists``), or ratings that ``--rating_levels`` cannot read (each
    history item's rating must be an integer in 1..N: ``ltr_common.sequences.check_ratings``)."""
    require_training_lists(config, split)
    if config.model in SEQUENTIAL and config.rating_levels:
        parts = {"train": split.train, "validation": split.validation, "test": split.test}
        if split.older is not None:  # read as history too (``Split.history``)
            parts["older (cut by --max_list_size)"] = split.older
        for part, lists in parts.items():
            try:
                check_ratings(lists, config.rating_levels, f"the {part} ratings")
            except ValueError as err:
                raise ConfigError(f"--rating_levels: {err}") from None


def require_training_lists(config: TrainConfig, split: Split) -> None:
    """Refuse a split in which no user has a training list: an epoch without a step trains
    nothing and never ends. ``ConfigError`` names the sizes that held every rating out."""
    if len(split.train):
        return
    held_out = [split.validation, split.test]
    users = np.concatenate([part.users for part in held_out])
    per_user = np.bincount(users, weights=np.concatenate([part.lengths for part in held_out]))
    most = int(per_user.max()) if len(per_user) else 0
    if config.refit:  # the validation ratings train: only the test lists are held out
        sizes, verb, them = f"--test_size {config.test_size}", "leaves", "it"
    else:
        sizes = f"--test_size {config.test_size} and --validation_size {config.validation_size}"
        verb, them = "leave", "them"
    lowest = config.test_size == 1 and (config.refit or config.validation_size == 1)
    advice = "the data has too few ratings per user for this split" if lowest else f"lower {them}"
    raise ConfigError(
        f"{sizes} {verb} no user a training list: every user's ratings are all held out (the "
        f"most any user has is {most}); {advice}"
    )


def require_sequences(config: TrainConfig, histories: Lists) -> None:
    """Refuse a sequence model whose training histories hold no next item to learn (no user
    with two training ratings): its epoch would have no step. ``histories``: every user's
    training ratings in time order."""
    if len(histories) and (histories.lengths >= 2).any():
        return
    most = int(histories.lengths.max()) if len(histories) else 0
    raise ConfigError(
        f"--model {config.model}: no user has two training ratings (a history and a next item to "
        f"learn; the most any user has is {most}): use --model dot, or data with more ratings per user"
    )


def host_inputs(batch: Batch, config: TrainConfig, *, epoch: int, index: int) -> tuple[Batch, object]:
    """``(batch, pairs)`` as a training step takes them, drawn in NumPy from ``(seed, epoch,
    index)``: the same in both frameworks.

    Each list's items in a random order (``shuffled``) when a loss of the objective orders
    tied labels (``Loss.random_order``): a loss breaks ties by position, so this is a random
    order among tied labels — as an in-graph ``tie_break`` would give, at the cost of a NumPy
    gather on the host instead of the device. Then the sampled pairs (None: all pairs, or no
    pairwise term), drawn on the lists as trained.
    """
    rng = np.random.default_rng([config.seed, epoch, index])
    order = random_order(batch.labels.shape, rng)  # drawn alike whether used or not
    if any(LOSSES[name].random_order for name, _ in config.objective_terms):
        batch = shuffled(batch, order)
    pairs = None
    wants_pairs = any(LOSSES[name].takes_pairs for name, _ in config.objective_terms)
    if wants_pairs and config.pairs_per_list > 0:
        pairs = sample_pairs(batch.labels, batch.mask, pairs_per_list=config.pairs_per_list, rng=rng)
    return batch, pairs


def random_order(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A uniformly random permutation of each list [..., L]: the positions in the order of a
    uniform draw, ties of the draw by position.

    The stable argsort of the draw, computed as one plain sort: a float32 draw is ``k /
    2**24`` for an integer ``k``, so ``k`` with the position in its low bits is a unique key
    in the same order (about a fifth of the stable sort's time at [32, 1024]).

    Example:
      >>> sorted(random_order((1, 4), np.random.default_rng(0))[0].tolist())
      [0, 1, 2, 3]
    """
    draw = rng.random(shape, dtype=np.float32)
    bits = max(shape[-1] - 1, 0).bit_length()
    word = np.uint32 if 24 + bits <= 32 else np.uint64  # 32-bit keys sort faster (L <= 256)
    keys = (draw * np.float32(2**24)).astype(word) << word(bits)
    keys |= np.arange(shape[-1], dtype=word)
    return (np.sort(keys, axis=-1) & word((1 << bits) - 1)).astype(np.intp)


def shuffled(batch: Batch, order: np.ndarray) -> Batch:
    """``batch`` with each list's items (ids, labels, mask) put in ``order`` ([..., L]): one
    flat index for the three gathers (``np.take_along_axis`` builds its own for each, at
    about three times the cost)."""
    *lists, length = order.shape
    flat = order + (np.arange(math.prod(lists)) * length).reshape(*lists, 1)
    take = lambda x: np.take(x, flat)  # noqa: E731
    return batch._replace(item_ids=take(batch.item_ids), labels=take(batch.labels), mask=take(batch.mask))


def sequence_inputs(
    config: TrainConfig, lists: Lists, num_items: int, *, epoch: int, start_batch: int = 0, negatives=None
) -> Iterator[tuple[SequenceBatch, None]]:
    """``(SequenceBatch, None)`` for each step of a sequence model's ``epoch`` over ``lists``
    (users' training histories, each with a next item): users in an order drawn from
    ``(seed, epoch)`` (with length bucketing, those of similar history lengths together, each
    batch padded to ``sequence_width``). Each slot's targets are ranked against
    ``negatives(users, rng)`` sampled items (drawn from ``(seed, epoch, batch)``), or, without
    a sampler, against the whole catalog — for the retrieve task; for rerank
    (``config.task``) the targets alone, by their own labels."""
    counts = slots(lists, config.history_length)
    per_batch = counts.sum() / max(-(-len(lists) // config.batch_size), 1)  # an epoch's mean
    batches = epoch_order(
        lists,
        batch_size=config.batch_size,
        seed=config.seed,
        epoch=epoch,
        length_bucketing=config.length_bucketing,
    )
    for index, list_ids in enumerate(batches[start_batch:], start=start_batch):
        sampled = None
        if negatives is not None:
            rng = np.random.default_rng([config.seed, epoch, index, NEGATIVE_STREAM])
            sampled = negatives(lists.users[list_ids], rng)
        longest = int(min(lists.lengths[list_ids].max() - 1, config.history_length))
        batch = sequence_batch(
            lists,
            list_ids,
            batch_size=config.batch_size,
            length=sequence_width(longest, config.history_length),
            next_items=config.next_items,
            negatives=sampled,
            num_items=num_items,
            weight=counts[list_ids].sum() / per_batch,
            catalog=config.task == "retrieve",
        )
        yield batch, None


def training_inputs(
    config: TrainConfig, train: Lists, *, epoch: int, start_batch: int = 0, extend=None
) -> Iterator[tuple[Batch, object]]:
    """``(batch, pairs)`` for each training step of ``epoch`` over the lists of
    ``train`` from ``start_batch``; ``extend(batch, epoch=, index=)``, when given, turns each
    batch into the one trained on (e.g. adds sampled negatives) before its pairs are drawn."""
    batches = iterate_batches(
        train,
        batch_size=config.batch_size,
        seed=config.seed,
        epoch=epoch,
        length_bucketing=config.length_bucketing,
        start_batch=start_batch,
    )
    for index, batch in enumerate(batches, start=start_batch):
        if extend is not None:
            batch = extend(batch, epoch=epoch, index=index)
        yield host_inputs(batch, config, epoch=epoch, index=index)
