"""The labels and mask of next-item training lists in JAX (``ltr_common.sequences``): what a
sequence model's scores are measured against, for any registered loss."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from ltr_common.sequences import Packing, SequenceBatch


class PackedSequenceBatch(NamedTuple):
    """A ``SequenceBatch`` and how its slots are packed several users to a row
    (``ltr_common.sequences.pack_histories``): the packed step reads every slot's history,
    targets and labels through ``packing``, and the per-user arrays (``rated_before``, the
    history each slot's "rated by then" comes from) through ``packing.rows``."""

    batch: SequenceBatch
    packing: Packing


def _refuse_sampled_negatives(batch) -> None:
    """A packed batch's lists are its slots' own (the catalog, or the targets alone): the
    sampled negatives are a batch row's, which a packed row does not have."""
    if batch.negatives.shape[-1]:
        raise ValueError(
            "a packed batch scores the whole catalog or its targets alone, not sampled negatives"
        )


def packed_inputs(packed: PackedSequenceBatch) -> dict:
    """The sequence model's inputs for a packed batch, [R, T] (and [R, T, K] targets)."""
    batch, (rows, slots, valid) = packed
    _refuse_sampled_negatives(batch)
    return {
        "history": batch.history[rows, slots],
        "history_mask": valid,
        "targets": batch.targets[rows, slots],
        "negatives": jnp.zeros((rows.shape[0], 0), batch.negatives.dtype),
        "ratings": batch.history_labels[rows, slots],
        "segments": rows,
        "slots": slots,
    }


def next_item_lists(batch, num_items: int, packing: Packing | None = None):
    """``(labels, where)`` of each slot's list, shaped like the sequence model's scores.

    The targets get their ``target_labels``; everything else 0. With sampled negatives, a
    slot's list is its targets then the batch row's negatives, valid where the slot holds an
    item (and each target exists). Over the whole catalog, a slot's list leaves out every
    item the user rated up to it (in the window or before it), as retrieval's evaluation
    does. With neither, a slot's list is its targets alone (reranking). With ``packing``
    (``PackedSequenceBatch``), the lists of the packed slots, [R, T, ...].
    """
    history_mask = batch.history_mask
    batch_size, length = history_mask.shape
    if packing is None:  # each slot where it is: users by row, slots by column
        targets, target_mask, target_labels, slot_valid = (
            batch.targets,
            batch.target_mask,
            batch.target_labels,
            history_mask,
        )
        users, slots = jnp.arange(batch_size)[:, None], jnp.arange(length, dtype=jnp.int32)
    else:
        users, slots, slot_valid = packing
        at = (users, slots)
        targets, target_labels = batch.targets[at], batch.target_labels[at]
        target_mask = batch.target_mask[at] & slot_valid[..., None]
    grades = jnp.where(target_mask, target_labels, 0.0)
    slot = slot_valid[..., None]
    if batch.negatives.shape[-1] == 0 and batch.rated_before.shape[-1] == 0:  # the targets alone
        return grades, target_mask & slot
    if batch.negatives.shape[-1] == 0:
        # Both [..., num_items] results as comparisons that XLA fuses into the loss, instead
        # of a scatter into the catalog and a running sum along the history: an item's label
        # is its largest grade among the slot's targets, and it was rated by slot t if the
        # user's history first reads it at a slot <= t (``first``: [B, num_items], T if never).
        catalog = jnp.arange(num_items, dtype=targets.dtype)
        labels = jnp.max(jnp.where(targets[..., None] == catalog, grades[..., None], 0.0), axis=-2)
        first = jnp.full((batch_size, num_items), length, jnp.int32)
        first = first.at[jnp.arange(batch_size)[:, None], batch.history].min(
            jnp.where(history_mask, jnp.arange(length, dtype=jnp.int32), length)
        )
        rated = (first[users] <= slots[..., None]) | batch.rated_before[users]
        return labels, slot & ~rated
    if packing is not None:
        _refuse_sampled_negatives(batch)
    negatives = batch.negatives.shape[-1]
    labels = jnp.concatenate([grades, jnp.zeros((*grades.shape[:-1], negatives), jnp.float32)], axis=-1)
    where = jnp.concatenate([target_mask, jnp.ones((*grades.shape[:-1], negatives), bool)], axis=-1)
    return labels, where & slot & (batch.list_ids >= 0)[:, None, None]
