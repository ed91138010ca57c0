"""A user's history as a sequence, framework-neutral: the padded histories a sequence model
reads, and its training batches of next items.

A history is a user's items in time order. A model reads the newest ``T`` of them,
left-padded so that the newest always sits at slot ``T - 1`` (``histories``). Training on
next items (``sequence_batch``): at every slot of a user's training history, the items that
followed it are the targets — the next ``K`` (``--next_items``), the nearest ranked first —
ranked against ``N`` items the user never rated in training, sampled for the batch, or,
with ``N = 0``, against every item the user had not rated by then.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ltr_common.lists import Lists


class Histories(NamedTuple):
    """Every user's newest items, left-padded: ``items`` [U, T] int32 (0 at padding), ``mask``
    [U, T] bool (True at real items), ``labels`` [U, T] float32 their ratings (0 at padding);
    a user without history has an all-False row."""

    items: np.ndarray
    mask: np.ndarray
    labels: np.ndarray

    def rows(self, rows, width: int | None = None) -> Histories:
        """The histories of ``rows``, their newest ``width`` slots (default: all)."""
        slots = slice(None) if width is None else slice(-width, None)
        return Histories(*(a[rows, slots] for a in self))


def histories(lists: Lists, num_users: int, length: int) -> Histories:
    """The newest ``length`` items of each user's list in ``lists`` (one list per user, in
    time order: ``Split.history``), left-padded, for every user index below ``num_users``.

    Example:
      >>> from ltr_common.lists import Lists
      >>> lists = Lists(np.array([1], np.int32), np.array([0, 3]), np.array([7, 8, 9], np.int32),
      ...               np.ones(3, np.float32), np.zeros(3, np.int64), np.arange(3))
      >>> h = histories(lists, 2, 2)
      >>> h.items.tolist(), h.mask.tolist()
      ([[0, 0], [8, 9]], [[False, False], [True, True]])
    """
    items = np.zeros((num_users, length), np.int32)
    mask = np.zeros((num_users, length), bool)
    labels = np.zeros((num_users, length), np.float32)
    if len(lists):
        kept = np.minimum(lists.lengths, length)
        rows = np.repeat(lists.users, kept)
        slot = length - np.repeat(kept, kept) + _ranks(kept)
        source = np.repeat(lists.offsets[1:] - kept, kept) + _ranks(kept)
        items[rows, slot] = lists.items[source]
        mask[rows, slot] = True
        labels[rows, slot] = lists.labels[source]
    return Histories(items, mask, labels)


_LAST_HISTORIES: list = [None, None, None]  # (lists, (num_users, length), Histories)


def user_histories(lists: Lists, num_users: int, length: int) -> Histories:
    """``histories``, the last result kept while ``lists`` is the same object: evaluation
    scores the users chunk by chunk from one history, and the windows of every user are
    made once (at ML-20M's size, 138,000 x 200 slots) rather than once a chunk."""
    last, key, kept = _LAST_HISTORIES
    if last is not lists or key != (num_users, length):
        kept = histories(lists, num_users, length)
        _LAST_HISTORIES[:] = [lists, (num_users, length), kept]
    return kept


def check_ratings(lists: Lists, levels: int, what: str) -> None:
    """Refuse ``lists`` whose labels a model reading ``levels`` rating levels cannot: each
    must be an integer in 1..levels. ``ValueError`` names ``what`` and the first bad label."""
    labels = lists.labels
    bad = np.flatnonzero((labels != np.round(labels)) | (labels < 1) | (labels > levels))
    if len(bad):
        raise ValueError(
            f"{what}: rating {float(labels[bad[0]]):g} is not an integer in 1..{levels} "
            f"(--rating_levels {levels} reads each history item's rating)"
        )


def _ranks(counts: np.ndarray) -> np.ndarray:
    """``0 .. c - 1`` for each count ``c``, concatenated."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def width_groups(window: Histories) -> list[tuple[np.ndarray, int]]:
    """``[(rows, width), ...]``: the rows of ``window`` grouped by the ``sequence_width`` their
    histories need, so that a model reads each group's newest ``width`` slots only (the
    cost of attention grows with the square of the width; most users' histories are short).

    Example:
      >>> mask = np.arange(8) >= np.array([[7], [0], [5]])
      >>> w = Histories(np.zeros((3, 8), np.int32), mask, mask.astype(np.float32))
      >>> [(rows.tolist(), width) for rows, width in width_groups(w)]
      [([0], 2), ([2], 4), ([1], 8)]
    """
    length = window.mask.shape[1]
    widths = np.array([sequence_width(max(int(n), 1), length) for n in window.mask.sum(axis=1)])
    return [(np.flatnonzero(widths == width), int(width)) for width in np.unique(widths)]


class SequenceBatch(NamedTuple):
    """One batch of next-item training; a NamedTuple, so a pytree.

    ``history`` [B, T] and ``history_mask`` [B, T]: the newest ``T`` items of each user's
    training history but the last, left-padded; ``history_labels`` [B, T] their ratings.
    ``targets`` [B, T, K]: the ``K`` items after each slot (``target_mask`` False where the
    history ends sooner), ``target_labels`` their labels. ``negatives`` [B, N]: items the user
    never rated in training, or [B, 0] for the whole catalog, where ``rated_before`` [B,
    num_items] marks the items rated before the first slot (what the window does not show);
    both [B, 0]: the targets alone. ``list_ids`` [B]: the user's list, -1 for padding rows.
    ``weight`` [B], one value: what the batch's mean loss is multiplied by, its slots over an
    epoch's average (``slot_weight``), so that every slot weighs the same in an epoch however
    the batches are cut.
    """

    user_ids: np.ndarray
    history: np.ndarray
    history_mask: np.ndarray
    history_labels: np.ndarray
    targets: np.ndarray
    target_mask: np.ndarray
    target_labels: np.ndarray
    negatives: np.ndarray
    rated_before: np.ndarray
    list_ids: np.ndarray
    weight: np.ndarray


class Packing(NamedTuple):
    """Where each slot of a packed batch comes from (``pack_histories``): ``rows`` [R, T] the
    batch row (the user) it reads, ``slots`` [R, T] the slot of that row, ``valid`` [R, T] True
    where a history item sits (``rows`` and ``slots`` 0 elsewhere)."""

    rows: np.ndarray
    slots: np.ndarray
    valid: np.ndarray


def pack_histories(history_mask: np.ndarray, *, row_multiple: int = 8) -> Packing:
    """Several users' histories to a row, so that a batch of short histories costs what
    their items cost rather than ``B x T`` slots (ML-100K's training batches: about 40% of
    the slots hold an item).

    Each row of ``history_mask`` [B, T] holds its items at its newest slots, contiguous (the
    left-padded ``sequence_batch`` layout). They are packed first-fit decreasing, longest
    first, each user's slots in order and side by side, into rows of ``T``; the row count is
    rounded up to a multiple of ``row_multiple``, so a compiled step sees few shapes (and a
    mesh can split the rows). A model reading a packed row attends within each user's slots
    only (``rows`` equal), and reads each slot's position from ``slots``: every slot's state
    is then the one it has in its own row.

    Example:
      >>> mask = np.arange(4) >= np.array([[1], [3], [2], [4]])  # 3, 1, 2 and 0 items
      >>> packed = pack_histories(mask, row_multiple=1)
      >>> packed.rows.tolist(), packed.slots.tolist()
      ([[0, 0, 0, 1], [2, 2, 0, 0]], [[1, 2, 3, 3], [2, 3, 0, 0]])
      >>> packed.valid.sum(axis=1).tolist()
      [4, 2]
    """
    batch_size, length = history_mask.shape
    counts = history_mask.sum(axis=1)
    if (history_mask != (np.arange(length) >= length - counts[:, None])).any():
        raise ValueError("history_mask: every row's items must fill its newest slots, contiguous")
    free: list[int] = []  # each packed row's free slots
    start = np.zeros(batch_size, np.int64)  # where each user's items begin in their packed row
    packed_row = np.zeros(batch_size, np.int64)
    for user in np.argsort(-counts, kind="stable"):
        count = int(counts[user])
        if count == 0:
            break
        row = next((r for r, room in enumerate(free) if room >= count), len(free))
        if row == len(free):
            free.append(length)
        packed_row[user], start[user] = row, length - free[row]
        free[row] -= count
    num_rows = -(-max(len(free), 1) // row_multiple) * row_multiple
    rows = np.zeros((num_rows, length), np.int32)
    slots = np.zeros((num_rows, length), np.int32)
    valid = np.zeros((num_rows, length), bool)
    users = np.repeat(np.arange(batch_size), counts)
    within = _ranks(counts)
    at = (np.repeat(packed_row, counts), np.repeat(start, counts) + within)
    rows[at] = users
    slots[at] = length - np.repeat(counts, counts) + within
    valid[at] = True
    return Packing(rows, slots, valid)


def trainable(lists: Lists) -> Lists:
    """The lists with a next item to learn: two items or more."""
    return lists.take(np.flatnonzero(lists.lengths >= 2))


def sequence_width(inputs: int, history_length: int) -> int:
    """The slots a batch whose longest input runs ``inputs`` items is padded to: the next
    quarter of ``history_length``, so a step compiles for at most four widths while short
    histories skip most of the padding (and attention's cost grows with the square).

    Example:
      >>> [sequence_width(n, 200) for n in (1, 50, 51, 199, 200)]
      [50, 50, 100, 200, 200]
    """
    quarter = max(history_length // 4, 1)
    return min(history_length, -(-inputs // quarter) * quarter)


def sequence_batch(
    lists: Lists,
    list_ids: np.ndarray,
    *,
    batch_size: int,
    length: int,
    next_items: int,
    negatives: np.ndarray | None,
    num_items: int,
    weight: float = 1.0,
    catalog: bool = True,
) -> SequenceBatch:
    """The ``SequenceBatch`` of the lists ``list_ids`` of ``lists`` (each a user's training
    history, at least two items), padded to ``batch_size`` rows; ``negatives`` [n, N] the
    sampled items of the ``n`` lists, or None for the whole catalog — or, with
    ``catalog=False``, for the targets alone (reranking: the next items ordered by their own
    labels, e.g. ratings; otherwise the targets' labels are ``K, K - 1, ..., 1``, the nearest
    highest)."""
    count = len(list_ids)
    list_ids = np.asarray(list_ids, np.int64)
    if count > batch_size:
        raise ValueError(f"{count} lists do not fit a batch of batch_size={batch_size}")
    lengths = lists.lengths[list_ids]
    if (lengths < 2).any():
        raise ValueError("every list of a sequence batch needs two items or more")
    # The window: the newest length + 1 items; the inputs are all but its last.
    window = np.minimum(lengths, length + 1)
    start = lists.offsets[list_ids] + lengths - window
    inputs = window - 1
    rows = np.repeat(np.arange(count), inputs)
    within = _ranks(inputs)
    slot = length - np.repeat(inputs, inputs) + within
    history = np.zeros((batch_size, length), np.int32)
    history_mask = np.zeros((batch_size, length), bool)
    history_labels = np.zeros((batch_size, length), np.float32)
    read = np.repeat(start, inputs) + within
    history[rows, slot] = lists.items[read]
    history_mask[rows, slot] = True
    history_labels[rows, slot] = lists.labels[read]
    targets = np.zeros((batch_size, length, next_items), np.int32)
    target_mask = np.zeros((batch_size, length, next_items), bool)
    target_labels = np.zeros((batch_size, length, next_items), np.float32)
    own_labels = not catalog and negatives is None
    for ahead in range(1, next_items + 1):  # K small passes, each vectorised over the batch
        reach = within + ahead < np.repeat(window, inputs)
        target = np.repeat(start, inputs) + within + ahead
        targets[rows[reach], slot[reach], ahead - 1] = lists.items[target[reach]]
        target_mask[rows[reach], slot[reach], ahead - 1] = True
        grade = lists.labels[target[reach]] if own_labels else next_items + 1 - ahead
        target_labels[rows[reach], slot[reach], ahead - 1] = grade
    user_ids = np.zeros(batch_size, np.int32)
    user_ids[:count] = lists.users[list_ids]
    ids = np.full(batch_size, -1, np.int32)
    ids[:count] = list_ids
    if own_labels:
        sampled = np.zeros((batch_size, 0), np.int32)
        rated_before = np.zeros((batch_size, 0), bool)
    elif negatives is None:
        sampled = np.zeros((batch_size, 0), np.int32)
        rated_before = np.zeros((batch_size, num_items), bool)
        earlier = start - lists.offsets[list_ids]
        before_rows = np.repeat(np.arange(count), earlier)
        before = np.repeat(lists.offsets[list_ids], earlier) + _ranks(earlier)
        rated_before[before_rows, lists.items[before]] = True
    else:
        sampled = np.zeros((batch_size, negatives.shape[1]), np.int32)
        sampled[:count] = negatives
        rated_before = np.zeros((batch_size, 0), bool)
    weights = np.full(batch_size, weight, np.float32)
    return SequenceBatch(
        user_ids,
        history,
        history_mask,
        history_labels,
        targets,
        target_mask,
        target_labels,
        sampled,
        rated_before,
        ids,
        weights,
    )


def slots(lists: Lists, length: int) -> np.ndarray:
    """Each list's training slots (the items a window of ``length`` inputs predicts from)."""
    return np.minimum(lists.lengths - 1, length)
