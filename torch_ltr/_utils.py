"""Argument checks, orderings and the one safe reduction shared by the PyTorch losses and metrics."""

from __future__ import annotations

import torch

REDUCTIONS = ("none", "sum", "mean")


def _describe(x: torch.Tensor) -> str:
    return f"shape {tuple(x.shape)} and dtype {x.dtype}"


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")


def check_inputs(scores, labels, where, tie_break=None):
    """Validate and normalise ``(scores, labels, where, tie_break)`` (see ``jax_ltr._utils``)."""
    scores, labels = torch.as_tensor(scores), torch.as_tensor(labels)
    if not scores.is_floating_point():
        raise ValueError(f"scores must be a floating-point array, got {_describe(scores)}")
    if scores.ndim < 1:
        raise ValueError(f"scores must have a list axis (at least 1-D), got {_describe(scores)}")
    if labels.shape != scores.shape:
        raise ValueError(f"labels {_describe(labels)} does not match scores {_describe(scores)}")
    if labels.dtype == torch.bool or labels.is_complex():
        raise ValueError(f"labels must be a numeric array, got {_describe(labels)}")
    if where is None:
        where = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    else:
        where = torch.as_tensor(where, device=scores.device)
        if where.dtype != torch.bool:
            raise ValueError(f"where must be a boolean mask, got {_describe(where)}")
        if where.shape != scores.shape:
            raise ValueError(f"where {_describe(where)} does not match scores {_describe(scores)}")
    dtype = torch.promote_types(scores.dtype, torch.float32)
    labels = labels.to(dtype)
    bad = where & ~torch.isfinite(labels)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"labels must be finite where valid; found {labels[index].item()} at index {index}")
    if tie_break is not None:
        tie_break = torch.as_tensor(tie_break)
        if not tie_break.is_floating_point() or tie_break.shape != scores.shape:
            raise ValueError(
                f"tie_break must be a floating array shaped like scores {tuple(scores.shape)}, "
                f"got {_describe(tie_break)}"
            )
        tie_break = tie_break.to(dtype)
    return scores.to(dtype), labels, where, tie_break


def check_k(k: int | None, name: str = "k") -> None:
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise ValueError(f"{name} must be an integer >= 1 or None, got {k!r}")


def safe_reduce(per_list: torch.Tensor, counted: torch.Tensor, reduction: str) -> torch.Tensor:
    """ "none" keeps per-list values, "sum" adds them, "mean" divides the sum by the counted
    items (lists or pairs), an empty count giving 0 with finite gradients."""
    check_reduction(reduction)
    if reduction == "none":
        return per_list
    total = per_list.sum()
    if reduction == "sum":
        return total
    return total / counted.sum().clamp(min=1).to(total.dtype)


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
