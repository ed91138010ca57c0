"""Fixed-shape padded batches of lists, the same NumPy arrays for JAX and PyTorch.

Shapes are chosen so compiled code sees few of them:

* ``B`` is fixed: the last partial batch is filled with fully masked rows (``mask``
  all False, ``list_ids`` -1), which add nothing to any loss or metric.
* ``L`` is padded up to a bucket edge: 8, 12, 16, 24, 32, 48, 64, 96, ... (powers of
  two and 1.5 times them), capped at the split's longest list. That wastes at most a
  third of a batch on padding and compiles about two shapes per doubling of the length.

Order is a pure function of ``(seed, epoch)``, so a resumed run sees the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from ltr_common.lists import Lists

MIN_BUCKET = 8


class Batch(NamedTuple):
    """One padded batch. A NamedTuple, so ``jax.tree.map`` treats it as a pytree."""

    user_ids: np.ndarray  # [B] int32
    item_ids: np.ndarray  # [B, L] int32, 0 at padding
    labels: np.ndarray  # [B, L] float32, 0 at padding
    mask: np.ndarray  # [B, L] bool, True = real item
    list_ids: np.ndarray  # [B] int32, the list's index in its Lists, -1 for padding rows


def bucket_length(length: int, *, max_length: int) -> int:
    """The padded width for a batch whose longest list has ``length`` items.

    Example:
      >>> [bucket_length(n, max_length=200) for n in (1, 10, 50, 150, 199)]
      [8, 12, 64, 192, 200]
    """
    if length > max_length:
        raise ValueError(f"length {length} exceeds max_length {max_length}")
    edge = MIN_BUCKET
    while edge < length:
        edge = edge * 3 // 2 if edge & (edge - 1) == 0 else edge * 4 // 3
    return edge if edge <= max_length else max(max_length, MIN_BUCKET)


def make_batch(lists: Lists, list_ids: np.ndarray, *, batch_size: int, width: int) -> Batch:
    """Pad the lists ``list_ids`` (at most ``batch_size``) into a [batch_size, width] batch."""
    list_ids = np.asarray(list_ids, dtype=np.int64)
    if len(list_ids) > batch_size:
        raise ValueError(f"{len(list_ids)} lists do not fit a batch of batch_size={batch_size}")
    if len(list_ids) and (list_ids.min() < 0 or list_ids.max() >= len(lists)):
        raise ValueError(f"list_ids must lie in [0, {len(lists)}), got {list_ids.min()} .. {list_ids.max()}")
    lengths = lists.lengths[list_ids]
    if len(lengths) and lengths.max() > width:
        raise ValueError(f"a list of {lengths.max()} items does not fit width={width}")
    count = len(list_ids)
    item_ids = np.zeros((batch_size, width), np.int32)
    labels = np.zeros((batch_size, width), np.float32)
    mask = np.zeros((batch_size, width), bool)
    mask[:count] = np.arange(width) < lengths[:, None]
    if len(lists.items):  # each row's items from its offset on, read past its end and masked
        source = np.minimum(lists.offsets[list_ids][:, None] + np.arange(width), len(lists.items) - 1)
        item_ids[:count] = np.where(mask[:count], lists.items[source], 0)
        labels[:count] = np.where(mask[:count], lists.labels[source], 0)
    user_ids = np.zeros(batch_size, np.int32)
    user_ids[: len(list_ids)] = lists.users[list_ids]
    ids = np.full(batch_size, -1, np.int32)
    ids[: len(list_ids)] = list_ids
    return Batch(user_ids, item_ids, labels, mask, ids)


def epoch_order(
    lists: Lists,
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    length_bucketing: bool = False,
    window_batches: int = 8,
) -> list[np.ndarray]:
    """The list ids of every batch of one epoch; each list appears exactly once.

    With ``length_bucketing``, the shuffled lists are sorted by length within windows of
    ``window_batches`` batches and the batches then shuffled, which cuts padding while
    keeping the order random and a function of ``(seed, epoch)``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lists)) if shuffle else np.arange(len(lists))
    if length_bucketing:
        window = batch_size * window_batches
        lengths = lists.lengths
        order = (
            np.concatenate(
                [
                    chunk[np.argsort(-lengths[chunk], kind="stable")]
                    for chunk in np.split(order, range(window, len(order), window))
                ]
            )
            if len(order)
            else order
        )
    batches = np.split(order, range(batch_size, len(order), batch_size))
    if length_bucketing and shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return [b for b in batches if len(b)]


def iterate_batches(
    lists: Lists,
    *,
    batch_size: int,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
    length_bucketing: bool = False,
    start_batch: int = 0,
) -> Iterator[Batch]:
    """Yield the padded batches of one epoch, from ``start_batch`` on (for resuming)."""
    max_length = int(lists.lengths.max()) if len(lists) else MIN_BUCKET
    order = epoch_order(
        lists,
        batch_size=batch_size,
        seed=seed,
        epoch=epoch,
        shuffle=shuffle,
        length_bucketing=length_bucketing,
    )
    for ids in order[start_batch:]:
        width = bucket_length(int(lists.lengths[ids].max()), max_length=max_length)
        yield make_batch(lists, ids, batch_size=batch_size, width=width)
