"""PyTorch side of the argument checks (``ltr_common.checks``) and the one safe reduction.

The orders of labels live in ``torch_ltr._label_order``.
"""

from __future__ import annotations

import torch
from torch.autograd import forward_ad

from ltr_common import checks
from ltr_common.checks import check_reduction


def array_info(x: torch.Tensor) -> checks.ArrayInfo:
    if x.is_floating_point():
        kind = "float"
    elif x.dtype == torch.bool:
        kind = "bool"
    elif x.is_complex():
        kind = "other"
    else:
        kind = "int"
    return checks.ArrayInfo(tuple(x.shape), str(x.dtype), kind)


def as_tensor(value, name: str, device=None) -> torch.Tensor:
    """``torch.as_tensor(value)``; a ``ValueError`` naming ``name`` where it is no array of numbers."""
    try:
        return torch.as_tensor(value, device=device)
    except torch.OutOfMemoryError:
        raise
    except (TypeError, ValueError, RuntimeError):
        raise checks.not_an_array(name, value) from None


def as_option(value):
    """A number option given as a 0-d tensor, as the Python number it holds, where that
    loses nothing: not one that needs a gradient, carries a forward-mode tangent, or is
    wrapped by ``torch.func`` (``jvp``, ``vmap``), which then stays a tensor and is refused
    by the option's check, as before. Anything else as it is (``checks.as_number`` next)."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.ndim or value.requires_grad or torch._C._functorch.is_functorch_wrapped_tensor(value):
        return value
    if forward_ad.unpack_dual(value).tangent is not None:
        return value
    return value.item()


def check_inputs(scores, labels, where, tie_break=None):
    """Validate and normalise ``(scores, labels, where, tie_break)`` (see ``jax_ltr._utils``)."""
    scores, labels = as_tensor(scores, "scores"), as_tensor(labels, "labels")
    where = None if where is None else as_tensor(where, "where", device=scores.device)
    tie_break = None if tie_break is None else as_tensor(tie_break, "tie_break")
    checks.check_arrays(*(None if x is None else array_info(x) for x in (scores, labels, where, tie_break)))
    if where is None:
        where = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    dtype = torch.promote_types(scores.dtype, torch.float32)
    labels = labels.to(dtype)
    bad = where & ~torch.isfinite(labels)
    if bad.any():  # found on the device; only the first bad label comes to the host
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise checks.non_finite_label_error(labels[index].item(), index)
    if tie_break is not None:
        tie_break = tie_break.to(dtype)
    return scores.to(dtype), labels, where, tie_break


def check_label_range(labels, where, *, high: float | None = None) -> None:
    """``checks.check_label_range``: found on the device, the labels brought to the host only
    to name an offending one."""
    above = torch.inf if high is None else high
    if (where & ((labels < 0) | (labels > above))).any():
        checks.check_label_range(labels.cpu().numpy(), where.cpu().numpy(), high=high)


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
