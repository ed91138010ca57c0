"""JAX side of the argument checks (``ltr_common.checks``) and the one safe reduction.

The orders of labels live in ``jax_ltr._label_order``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ltr_common import checks
from ltr_common.checks import check_reduction


def is_concrete(x) -> bool:
    """False for a tracer: under jit, checks that need values cannot run."""
    return not isinstance(x, jax.core.Tracer)


def array_info(x) -> checks.ArrayInfo:
    dtype = x.dtype
    if jnp.issubdtype(dtype, jnp.floating):
        kind = "float"
    elif dtype == jnp.bool_:
        kind = "bool"
    elif jnp.issubdtype(dtype, jnp.integer):
        kind = "int"
    else:
        kind = "other"
    return checks.ArrayInfo(tuple(x.shape), str(dtype), kind)


def as_labels(labels):
    """``labels`` as a JAX array holding the values given. Without x64, JAX stores a host array
    of 64-bit integers in 32 bits, wrapping around (2**31 would become -2**31); such labels
    become float32 on the host instead, the type the losses compute in then, rounded as
    PyTorch's conversion rounds them. Labels of no numeric type (bool, complex) stay a
    NumPy array, for the checks to describe."""
    if isinstance(labels, jax.Array):
        return labels
    host = as_host_array(labels, "labels")
    if host.dtype.kind not in "biuf":
        return host
    if host.dtype.kind in "iu" and host.dtype.itemsize == 8 and not jax.config.jax_enable_x64:
        host = host.astype(np.float32)
    return jnp.asarray(host)


def as_array(value, name: str) -> jax.Array:
    """``jnp.asarray(value)``; a ``ValueError`` naming ``name`` where it is no array of numbers."""
    try:
        return jnp.asarray(value)
    except (TypeError, ValueError):
        raise checks.not_an_array(name, value) from None


def as_host_array(value, name: str) -> np.ndarray:
    """``np.asarray(value)``; a ``ValueError`` naming ``name`` for lists of unequal lengths,
    strings and objects. A traced value gets JAX's own error: it has no values on the host."""
    if isinstance(value, jax.core.Tracer):
        return np.asarray(value)
    try:
        host = np.asarray(value)
    except (TypeError, ValueError):
        raise checks.not_an_array(name, value) from None
    if host.dtype.kind in "OSU":
        raise checks.not_an_array(name, value)
    return host


def check_ids(ids, count: int, name: str):
    """``ids`` as they are, after ``checks.check_ids`` when concrete: outside ``jit`` an id
    outside [0, ``count``) is refused; under ``jit`` its row reads as JAX reads it (NaN past
    the end, counted from the end when negative). A multi-host array this process cannot
    read whole is not read."""
    if is_concrete(ids) and getattr(ids, "is_fully_addressable", True):
        checks.check_ids(ids, count, name)
    return ids


def check_inputs(scores, labels, where, tie_break=None):
    """Validate and normalise ``(scores, labels, where, tie_break)``.

    Returns arrays in the compute dtype (the scores' float type, at least float32 for
    half-precision inputs) with a full boolean ``where`` when none was given. Raises
    ``ValueError`` naming the argument; non-finite labels at valid positions are caught
    outside ``jit`` (inside, they are the caller's or the trainer guard's business).
    """
    scores = as_array(scores, "scores")
    labels = labels if isinstance(labels, jax.Array) else as_host_array(labels, "labels")
    where = None if where is None else as_array(where, "where")
    tie_break = None if tie_break is None else as_array(tie_break, "tie_break")
    checks.check_arrays(*(None if x is None else array_info(x) for x in (scores, labels, where, tie_break)))
    if where is None:
        where = jnp.ones(scores.shape, bool)
    dtype = jnp.promote_types(scores.dtype, jnp.float32)
    labels = as_labels(labels).astype(dtype)
    if is_concrete(labels) and is_concrete(where):  # NumPy: no tracer when jit closes over them
        checks.check_finite_labels(np.asarray(labels), np.asarray(where))
    if tie_break is not None:
        tie_break = tie_break.astype(dtype)
    return scores.astype(dtype), labels, where, tie_break


def check_label_range(labels, where, *, high: float | None = None) -> None:
    """``checks.check_label_range`` outside ``jit`` (concrete labels); under ``jit`` the loss
    marks such a list NaN instead (``nan_for_bad_labels`` with ``in_range``). ``high``:
    ``checks.GAIN_LABEL_MAX`` for labels that set a gain ``2^y - 1``, 1 for targets."""
    if is_concrete(labels) and is_concrete(where):  # NumPy: no tracer when jit closes over them
        checks.check_label_range(np.asarray(labels), np.asarray(where), high=high)


def nan_for_bad_labels(per_list, labels, where, *, in_range: tuple[float, float] | None = None):
    """NaN for every list with a non-finite label at a valid position, or, with ``in_range=(low,
    high)``, one outside it (``checks.check_label_range``).

    Outside ``jit`` such labels are a ``ValueError`` (``check_inputs``, the range checks);
    under ``jit`` nothing can be raised, so the bad list's value is NaN instead — visible in
    any reduction, and what the trainer's non-finite guard stops on — rather than a silently
    wrong number.
    """
    bad = ~jnp.isfinite(labels)
    if in_range is not None:
        bad |= (labels < in_range[0]) | (labels > in_range[1])
    return jnp.where(jnp.any(where & bad, axis=-1), jnp.nan, per_list)


def labels_in_levels(labels, where, levels: tuple[float, ...]):
    """[...] bool: every valid label of the list is one of ``levels``; raises outside ``jit``."""
    if is_concrete(labels) and is_concrete(where):  # NumPy: no tracer under jit
        checks.check_labels_in_levels(np.asarray(labels), np.asarray(where), levels)
    member = jnp.any(labels[..., None] == jnp.asarray(levels, labels.dtype), axis=-1) | ~where
    return jnp.all(member, axis=-1)


def safe_reduce(per_list, counted, reduction: str):
    """Reduce per-list values: "none" keeps them, "sum" adds them, "mean" divides the sum by
    the number of counted items (lists or pairs), taking an empty count to 0 with finite
    gradients. ``sum(safe_reduce(v, c, "none")) == safe_reduce(v, c, "sum")`` by construction.
    """
    check_reduction(reduction)
    if reduction == "none":
        return per_list
    total = jnp.sum(per_list)
    if reduction == "sum":
        return total
    # Counted in the loss dtype, not int32: a batch can hold more than 2**31 pairs, and a
    # float count only rounds (relatively, by an ulp) where an int32 one would wrap.
    count = jnp.sum(jnp.asarray(counted).astype(total.dtype))
    return total / jnp.maximum(count, 1)
