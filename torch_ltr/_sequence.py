"""The labels and mask of next-item training lists in PyTorch (see ``jax_ltr._sequence``)."""

from __future__ import annotations

import torch


def next_item_lists(batch, num_items: int):
    """``(labels, where)`` of each slot's list (see ``jax_ltr._sequence.next_item_lists``)."""
    history_mask, targets, target_mask = batch.history_mask, batch.targets, batch.target_mask
    grades = torch.where(target_mask, batch.target_labels, torch.zeros((), device=targets.device))
    slot = history_mask[..., None]
    if batch.negatives.shape[-1] == 0 and batch.rated_before.shape[-1] == 0:  # the targets alone
        return grades, target_mask & slot
    if batch.negatives.shape[-1] == 0:
        batch_size, length = history_mask.shape
        labels = torch.zeros(batch_size, length, num_items, device=targets.device)
        labels = labels.scatter_reduce(-1, targets.long(), grades, reduce="amax")
        read = torch.nn.functional.one_hot(batch.history.long(), num_items) * slot
        rated = (torch.cumsum(read, dim=1) > 0) | batch.rated_before[:, None, :]
        return labels, slot & ~rated
    negatives = batch.negatives.shape[-1]
    zeros = torch.zeros(*grades.shape[:-1], negatives, device=targets.device)
    labels = torch.cat([grades, zeros], dim=-1)
    ones = torch.ones(*grades.shape[:-1], negatives, dtype=torch.bool, device=targets.device)
    where = torch.cat([target_mask, ones], dim=-1)
    return labels, where & slot & (batch.list_ids >= 0)[:, None, None]
