"""The labels and mask of next-item training lists in JAX (``ltr_common.sequences``): what a
sequence model's scores are measured against, for any registered loss."""

from __future__ import annotations

import jax
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
        batch_size, length = history_mask.shape
        rows = jnp.arange(batch_size)[:, None, None]
        slots = jnp.arange(length)[None, :, None]
        labels = jnp.zeros((batch_size, length, num_items), jnp.float32).at[rows, slots, targets].max(grades)
        read = jax.nn.one_hot(batch.history, num_items, dtype=jnp.int32)
        read = jnp.where(slot, read, 0)
        rated = (jnp.cumsum(read, axis=1) > 0) | batch.rated_before[:, None, :]
        return labels, slot & ~rated
    negatives = batch.negatives.shape[-1]
    labels = jnp.concatenate([grades, jnp.zeros((*grades.shape[:-1], negatives), jnp.float32)], axis=-1)
    where = jnp.concatenate([target_mask, jnp.ones((*grades.shape[:-1], negatives), bool)], axis=-1)
    return labels, where & slot & (batch.list_ids >= 0)[:, None, None]
