"""JAX side of the argument checks (``ltr_common.checks``), orderings and the one safe reduction."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

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


def check_inputs(scores, labels, where, tie_break=None):
    """Validate and normalise ``(scores, labels, where, tie_break)``.

    Returns arrays in the compute dtype (the scores' float type, at least float32 for
    half-precision inputs) with a full boolean ``where`` when none was given. Raises
    ``ValueError`` naming the argument; non-finite labels at valid positions are caught
    outside ``jit`` (inside, they are the caller's or the trainer guard's business).
    """
    scores, labels = jnp.asarray(scores), jnp.asarray(labels)
    where = None if where is None else jnp.asarray(where)
    tie_break = None if tie_break is None else jnp.asarray(tie_break)
    checks.check_arrays(*(None if x is None else array_info(x) for x in (scores, labels, where, tie_break)))
    if where is None:
        where = jnp.ones(scores.shape, bool)
    dtype = jnp.promote_types(scores.dtype, jnp.float32)
    labels = labels.astype(dtype)
    if is_concrete(labels) and is_concrete(where):  # NumPy: no tracer when jit closes over them
        checks.check_finite_labels(np.asarray(labels), np.asarray(where))
    if tie_break is not None:
        tie_break = tie_break.astype(dtype)
    return scores.astype(dtype), labels, where, tie_break


def nan_for_bad_labels(per_list, labels, where):
    """NaN for every list with a non-finite label at a valid position.

    Outside ``jit`` such labels are a ``ValueError`` (``check_inputs``); under ``jit`` nothing
    can be raised, so the bad list's value is NaN instead — visible in any reduction, and
    what the trainer's non-finite guard stops on — rather than a silently wrong number.
    """
    bad = jnp.any(where & ~jnp.isfinite(labels), axis=-1)
    return jnp.where(bad, jnp.nan, per_list)


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


def descending_order(keys, where, tie_break=None):
    """The permutation that sorts ``keys`` descending along the last axis, valid items first.

    Ties are broken by ascending ``tie_break`` (when given), then by position: a stable
    lexicographic sort. ``+ 0.0`` folds -0.0 into +0.0 so signed zeros tie, as in PyTorch.
    """
    axis = keys.ndim - 1
    primary = jnp.where(where, -keys, jnp.inf) + 0.0
    position = lax.broadcasted_iota(jnp.int32, keys.shape, axis)
    if tie_break is None:
        operands, num_keys = (primary, position), 1
    else:
        operands, num_keys = (primary, jnp.where(where, tie_break, 0.0) + 0.0, position), 2
    return lax.sort(operands, dimension=axis, is_stable=True, num_keys=num_keys)[-1]


def labels_in_levels(labels, where, levels: tuple[float, ...]):
    """[...] bool: every valid label of the list is one of ``levels``; raises outside ``jit``."""
    if is_concrete(labels) and is_concrete(where):  # NumPy: no tracer under jit
        checks.check_labels_in_levels(np.asarray(labels), np.asarray(where), levels)
    member = jnp.any(labels[..., None] == jnp.asarray(levels, labels.dtype), axis=-1) | ~where
    return jnp.all(member, axis=-1)


def level_rank(labels, where, levels: tuple[float, ...]):
    """Each item's place in ``descending_order(labels, where)``, by a stable counting sort.

    With labels from a few known ``levels`` the order needs no comparison sort: an item's
    place is the number of valid items on higher levels plus the number on its own level
    before it. The per-level counts run in one pass along the list (``lax.scan`` over
    positions, carrying ``len(levels) + 1`` counters per list; invalid items form the last
    group), which on CPU is several times faster than XLA's stable sort. The result is a
    permutation of ``0 .. L-1`` along the last axis for any labels, valid items first.
    """
    num = len(levels)
    above = jnp.sum(labels[..., None] > jnp.asarray(levels, labels.dtype), axis=-1)
    # A label outside ``levels`` (possible under jit, where it cannot be refused) still gets a
    # group in [0, num): the places stay a permutation, so the scatter's unique_indices
    # promise holds whatever the labels; the caller marks such a list NaN.
    group = jnp.where(where, jnp.clip(num - 1 - above, 0, num - 1), num).astype(jnp.int32)
    flat = group.reshape(-1, group.shape[-1])
    groups = jnp.arange(num + 1, dtype=jnp.int32)

    def step(counts, column):
        hit = column[:, None] == groups
        before = jnp.sum(jnp.where(hit, counts, 0), axis=-1)
        return counts + hit, before

    counts, before = lax.scan(step, jnp.zeros((flat.shape[0], num + 1), jnp.int32), flat.T)
    start = jnp.cumsum(counts, axis=-1) - counts  # first place of each group
    rank = jnp.take_along_axis(start, flat, axis=-1) + before.T
    return rank.reshape(group.shape)


def take(x, order):
    return jnp.take_along_axis(x, order, axis=-1)
