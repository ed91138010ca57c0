"""The labels and mask of next-item training lists in JAX (``ltr_common.sequences``): what a
sequence model's scores are measured against, for any registered loss."""

from __future__ import annotations

import jax.numpy as jnp


def next_item_lists(batch, num_items: int):
    """``(labels, where)`` of each slot's list, shaped like the sequence model's scores.

    The targets get their ``target_labels``; everything else 0. With sampled negatives, a
    slot's list is its targets then the batch row's negatives, valid where the slot holds an
    item (and each target exists). Over the whole catalog, a slot's list leaves out every
    item the user rated up to it (in the window or before it), as retrieval's evaluation
    does. With neither, a slot's list is its targets alone (reranking).
    """
    history_mask, targets, target_mask = batch.history_mask, batch.targets, batch.target_mask
    grades = jnp.where(target_mask, batch.target_labels, 0.0)
    slot = history_mask[..., None]
    if batch.negatives.shape[-1] == 0 and batch.rated_before.shape[-1] == 0:  # the targets alone
        return grades, target_mask & slot
    if batch.negatives.shape[-1] == 0:
        # Both [B, T, num_items] results as comparisons that XLA fuses into the loss, instead
        # of a scatter into the catalog and a running sum along the history: an item's label
        # is its largest grade among the slot's targets, and it was rated by slot t if the
        # history first reads it at a slot <= t (``first``: [B, num_items], T if never).
        batch_size, length = history_mask.shape
        catalog = jnp.arange(num_items, dtype=targets.dtype)
        labels = jnp.max(jnp.where(targets[..., None] == catalog, grades[..., None], 0.0), axis=-2)
        slots = jnp.arange(length, dtype=jnp.int32)
        first = jnp.full((batch_size, num_items), length, jnp.int32)
        first = first.at[jnp.arange(batch_size)[:, None], batch.history].min(
            jnp.where(history_mask, slots, length)
        )
        rated = (first[:, None, :] <= slots[:, None]) | batch.rated_before[:, None, :]
        return labels, slot & ~rated
    negatives = batch.negatives.shape[-1]
    labels = jnp.concatenate([grades, jnp.zeros((*grades.shape[:-1], negatives), jnp.float32)], axis=-1)
    where = jnp.concatenate([target_mask, jnp.ones((*grades.shape[:-1], negatives), bool)], axis=-1)
    return labels, where & slot & (batch.list_ids >= 0)[:, None, None]
