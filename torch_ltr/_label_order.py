"""Orders of labels for the listwise losses and the metrics, in PyTorch: the reference for
``jax_ltr._label_order``.

The stable descending order of a list's labels: valid items first, ties by ascending
``tie_break`` (the trainers' random tie order), then by position. Stable ``argsort`` gives it
directly, so the counting passes and packed integer sorts of the JAX side have no counterpart
here; the parity tests hold both to the same permutation.
"""

from __future__ import annotations

import torch


def descending_order(keys, where, tie_break=None):
    """The permutation sorting ``keys`` descending on the last axis, valid items first; ties by
    ascending ``tie_break`` (when given), then position. Stable sorts only; ``+ 0.0`` folds -0.0."""
    primary = torch.where(where, -keys, torch.inf) + 0.0
    if tie_break is None:
        return torch.argsort(primary, dim=-1, stable=True)
    first = torch.argsort(torch.where(where, tie_break, 0.0) + 0.0, dim=-1, stable=True)
    second = torch.argsort(primary.gather(-1, first), dim=-1, stable=True)
    return first.gather(-1, second)


def take(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    return x.gather(-1, order)
