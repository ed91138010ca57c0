"""Ranking losses in JAX: the ListMLE family, pairwise Plackett–Luce, their hybrid, LambdaLoss,
ApproxNDCG, softmax and sigmoid cross-entropy, pointwise squared error.

Contract shared by every loss here and in ``torch_ltr``: ``scores`` and ``labels`` are
``[..., L]`` arrays, the last axis is the list and leading axes are batch; ``where`` is a
``[..., L]`` bool mask, True = valid item, and invalid items are ignored entirely, whatever
their score or label (NaN included). ``reduction`` is "none" (per-list values, shape
``[...]``), "sum", or "mean" (see each loss for what is counted). Everything jits.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_ltr._label_order import (
    checked_inverse,
    counting_beats_sorting,
    descending_order,
    first_places,
    label_arrangement,
    level_rank,
    put,
    rows_of,
    scan_in_place,
    sort_keys,
    take,
    to_columns,
    to_rows,
)
from jax_ltr._sweeps import PAIR_BLOCK, RANK_BLOCK, all_pairs_loss, pair_terms, smooth_ranks
from jax_ltr._utils import (
    array_info,
    as_array,
    as_host_array,
    check_inputs,
    check_label_range,
    check_reduction,
    is_concrete,
    labels_in_levels,
    nan_for_bad_labels,
    safe_reduce,
)
from ltr_common import checks
from ltr_common.checks import GAIN_LABEL_MAX, GAIN_RANGE, check_levels
from ltr_common.losses import mix, position_weights, top_k_weights

LISTMLE_METHODS = ("scan", "associative")


def _running_max_sum(x, where, *, method: str, reverse: bool):
    """Cumulative log-sum-exp over valid items along the first axis (the list's: [L, ...],
    so that each step of the scan, or level of the tree, is a vector across the lists),
    kept as two arrays.

    Returns ``(high, total)``: the running max of the valid ``x`` (``-inf`` before any) and
    ``sum exp(x - high)`` (0 before any), so the log-sum-exp is ``high + log(total)``.
    Keeping the pair, not the sum, costs rounding relative to ``total`` (at most L) instead
    of relative to the log-sum-exp's magnitude, and differences of log-sum-exps can be
    taken term by term.
    """
    high = jnp.where(where, x, -jnp.inf)
    total = where.astype(x.dtype)
    if method == "associative":

        def combine(first, second):
            (high_a, total_a), (high_b, total_b) = first, second
            top = jnp.maximum(high_a, high_b)
            finite_top = jnp.where(jnp.isfinite(top), top, 0.0)
            return top, total_a * jnp.exp(high_a - finite_top) + total_b * jnp.exp(high_b - finite_top)

        return lax.associative_scan(combine, (high, total), reverse=reverse, axis=0)

    # Sequential sums lose a relative eps per step; a Kahan compensation term keeps the
    # scan as accurate as the log-depth tree.
    def step(carry, column):
        run_high, run_total, run_error = carry
        value, valid = column
        top = jnp.where(valid, jnp.maximum(run_high, value), run_high)
        finite_top = jnp.where(jnp.isfinite(top), top, 0.0)
        # Once the max is +inf it stays so, and so does the total: nothing rescales it (exp(inf
        # - 0) would make the compensation inf * 0), and the compensation, inf - inf there, is
        # reset, so that the log-sum-exp stays +inf as the tree's does.
        rescale = jnp.where(run_high == top, 1.0, jnp.exp(run_high - finite_top))
        run_total, run_error = _kahan_add(
            run_total * rescale, run_error * rescale, jnp.where(valid, jnp.exp(value - finite_top), 0.0)
        )
        run_error = jnp.where(jnp.isfinite(run_total), run_error, 0.0)
        return (top, run_total, run_error), (top, run_total)

    lists_shape = x.shape[1:]
    init = (
        jnp.full(lists_shape, -jnp.inf, x.dtype),
        jnp.zeros(lists_shape, x.dtype),
        jnp.zeros(lists_shape, x.dtype),
    )
    _, (high, total) = lax.scan(step, init, (jnp.where(where, x, 0.0), where), reverse=reverse)
    return high, total


def _kahan_add(total, error, value):
    """``total + value`` with the running compensation ``error`` (Kahan summation)."""
    corrected = value - error
    new_total = total + corrected
    return new_total, (new_total - total) - corrected


def _check_method(method: str) -> str:
    """The concrete method: "auto" is "scan" on CPU (as fast as the tree there, and its Kahan
    sums the more accurate: docs/losses.md) and the log-depth "associative" on accelerators
    (docs/gpu.md), where L sequential steps would each be a kernel launch."""
    if method == "auto":
        return "scan" if jax.default_backend() == "cpu" else "associative"
    if method not in LISTMLE_METHODS:
        raise ValueError(f"method must be one of auto, {', '.join(LISTMLE_METHODS)}, got {method!r}")
    return method


def suffix_logsumexp(x, *, where=None, method: str = "auto"):
    """Reverse running log-sum-exp along the last axis, over valid items only.

    ``out[..., i] = log sum_{j >= i, where[..., j]} exp(x[..., j])``; ``-inf`` where that set is
    empty, ``+inf`` where it holds a ``+inf``, NaN where it holds a NaN (as PyTorch's
    ``logcumsumexp``). Computed in log space throughout (a running max and a rescaled sum, no
    single max shift), so spreads of 1e3 in float32 stay finite.

    Args:
      x: [..., L] float array.
      where: [..., L] bool array or None (all valid).
      method: "scan" (``lax.scan``, L sequential steps), "associative"
        (``lax.associative_scan``, log-depth) or "auto" (scan on CPU, else associative).

    Returns:
      [..., L] array like ``x``.

    Example:
      >>> import jax.numpy as jnp
      >>> [round(v, 4) for v in suffix_logsumexp(jnp.log(jnp.array([1.0, 2.0, 3.0]))).tolist()]
      [1.7918, 1.6094, 1.0986]
    """
    method = _check_method(method)
    x = as_array(x, "x")
    where = None if where is None else as_array(where, "where")
    checks.check_suffix_arrays(array_info(x), None if where is None else array_info(where))
    where = jnp.ones(x.shape, bool) if where is None else where
    dtype = x.dtype  # 16-bit floats summed in float32: a float16 sum of 65,520 shares is inf
    x = x.astype(jnp.promote_types(dtype, jnp.float32))
    x, where = jnp.moveaxis(x, -1, 0), jnp.moveaxis(where, -1, 0)  # the list axis first
    high, total = _running_max_sum(x, where, method=method, reverse=True)
    empty = total == 0  # no valid item at or after (a NaN total, from a NaN, is not)
    out = jnp.where(empty, -jnp.inf, high + jnp.log(jnp.where(empty, 1.0, total)))
    return jnp.moveaxis(out, 0, -1).astype(dtype)


_ONE_SHIFT_CHECKS: contextvars.ContextVar[list | None] = contextvars.ContextVar("one_shift", default=None)


@contextlib.contextmanager
def one_shift_only() -> Iterator[list]:
    """Within it, the ListMLE losses traced (the full order's path of ``listmle_loss``,
    ``position_listmle_loss``, ``topk_listmle_loss`` and the hybrid) leave out their
    wide-span fallback, and each appends to the list it yields a traced bool scalar: whether
    its one shift was exact (``_one_shift``: every list's valid scores span at most 43 in
    float32, none is infinite, and the places' weights, in magnitude, sum to at most exp(43)).
    Where that is True, the values and gradients are the ones the full call gives; where it
    is False, they are not to be used.

    Read when a function is traced, so it belongs inside the traced function, and the
    scalars must leave it as that function's outputs (or a differentiated function's
    auxiliary outputs). The trainer's step (``jax_ltr._train.one_shift_step``) compiles so:
    the fallback is about 0.3 s of each of its programs' compilation on a 2-core CPU, and a
    step whose check fails is run again with the full program.
    """
    token = _ONE_SHIFT_CHECKS.set([])
    try:
        yield _ONE_SHIFT_CHECKS.get()
    finally:
        _ONE_SHIFT_CHECKS.reset(token)


def listmle_rows(rows, where, count, arrangement, weights, method: str):
    """Per-list ListMLE of lists given as rows [N, L] in any order: ``arrangement`` moves
    them into their label order (``(index, is_order)`` of ``label_arrangement``; None: the
    rows are in it already), and ``where`` [N, L] marks the valid items, ``count`` [N]
    of them per list, which the arrangement puts first. ``weights``: None (every place
    weighs 1), or the places' weights laid out one list per column, [L, N], or [L, 1] for
    weights shared by every list, which are then never written out at [L, N]; the weights of
    places past a list's valid items change nothing, whatever they are (NaN and infinities
    included). Returns [N].

    Only what needs the label order is computed in it: the running sums, one list per
    column (``to_columns``), so that each of their steps is a vector across the N lists.
    Each list's largest score, the shift's check, the shares ``exp(s - top)`` and the
    gradient are computed in the rows, where the scores are: on CPU, XLA reads a transposed
    array at about half the speed of a contiguous one, and does it again in every fusion
    that reads it."""
    if weights is not None:
        weights = jnp.asarray(weights).astype(rows.dtype)
    fits_checks = _ONE_SHIFT_CHECKS.get()
    if fits_checks is not None:  # traced within ``one_shift_only``: no wide-span fallback
        fits_checks.append(_one_shift(lax.stop_gradient(rows), where, count, weights)[1])
        return _listmle_compiled(rows, where, count, arrangement, weights, method, False)
    return _listmle_compiled(rows, where, count, arrangement, weights, method, True)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _listmle_core(rows, where, count, arrangement, weights, method, fallback):
    return _listmle_fwd(rows, where, count, arrangement, weights, method, fallback)[0]


def _one_shift(rows, where, count, weights):
    """``(top, fits)`` for lists given as rows [N, L]: each list's largest valid score [N, 1]
    (0 where it has none or it is not finite) and whether every list's ListMLE can be
    computed with that one shift: each list's valid scores span at most ``log(max) / 2 - 1``
    (43 in float32) and the magnitudes of its place weights (``listmle_rows``' [L, N] or [L,
    1], None: all 1) sum to at most ``exp`` of that: every place's, so that weights shared by
    every list ([L, 1]) are summed once, not masked at [L, N]; and each list has at most
    ``exp(limit)`` valid items (float16's limit, about 94, is below many a length; float32's
    is not). Weights past a list's valid items that fail the test (huge, infinite, NaN) send
    the whole batch to the fallback, whose values are the same (under ``one_shift_only``,
    where there is none, the trainer runs the step again in full). Then ``exp(s - top)``
    stays a normal number, far above the bottom of the range, and the running sums of the
    gradient, at most the weights' sum times ``exp(span)``, and the value's ratios, at most
    the count times that, stay finite. An infinite score fails the test; a NaN score may
    pass it (XLA's vectorised maximum on a CPU need not carry a NaN through), and then the
    one shift's values are NaN, as the fallback's are."""
    limit = float(np.log(np.finfo(rows.dtype).max)) / 2 - 1
    top = jnp.max(jnp.where(where, rows, -jnp.inf), axis=-1, keepdims=True, initial=-jnp.inf)
    bottom = jnp.min(jnp.where(where, rows, jnp.inf), axis=-1, keepdims=True, initial=jnp.inf)
    span = jnp.where(count[:, None] > 0, top - bottom, 0.0)
    fits = jnp.all(span <= limit)
    if weights is not None:  # else each list's weights sum to its count
        fits &= jnp.all(jnp.sum(jnp.abs(weights), axis=0) <= np.exp(limit))
    # The value's ratios S_{p+1} / share_p reach the count times exp(span), whatever the
    # weights: a length past exp(limit) (float16's is about 94) is checked list by list.
    if rows.shape[-1] > np.exp(limit):
        fits &= jnp.all(count <= np.exp(limit))
    return jnp.where(jnp.isfinite(top), top, 0.0), fits


def _running_sum(x, method: str, *, reverse: bool):
    """Cumulative sum along the first axis: Kahan-compensated ``lax.scan`` ("scan"), a
    log-depth tree ("associative"); either way about an ulp of the sum, all terms >= 0."""
    if method == "associative":
        return lax.associative_scan(jnp.add, x, reverse=reverse, axis=0)

    def step(carry, column):
        total, error = _kahan_add(*carry, column)
        return (total, error), total

    init = (jnp.zeros(x.shape[1:], x.dtype),) * 2
    return scan_in_place(step, init, x, reverse=reverse)[1]


def _suffix_sums(share, count, weights, method: str):
    """``(S, value)`` for the shares ``exp(s - top)`` of lists in label order, one per column
    [L, N], with ``count`` [N] valid places each: the running sums from the end, ``S_p =
    sum_{q >= p} share_q`` (``_running_sum``), and each list's ListMLE ``sum_p w_p (c_p -
    s_p)`` over its valid places, each term taken as ``w_p log1p(S_{p+1} / share_p)``
    (``_log1p``): at least 0, so the sum cancels nothing (``top - s_p`` and ``log S_p``,
    summed apart, are each as large as the list's span and cancel where the scores follow
    the labels: 9e-7 against at most 1.7e-7 relative error in float32 at a span of 35), and
    accurate where ``S_{p+1}`` is far below ``share_p``, where ``log(S_p / share_p)`` would
    round to ``log(1 + eps)``. The shares are kept for it (XLA copies them before the
    running sums write over them: about 0.1 ms at (1024, 200) on a 2-core CPU, where the
    value's Kahan sum and logarithms kept in the running sums' loop took 0.4 ms)."""
    total = _running_sum(share, method, reverse=True)
    valid = _valid_places(count, share.shape[0])
    later = jnp.concatenate([total[1:], jnp.zeros_like(total[:1])])  # S_{p+1}: 0 after the last
    safe = jnp.where(valid, share, 1.0)
    return total, _weighted_sum(weights, valid, _log1p(later / safe, total / safe))


def _log1p(x, rounded):
    """``log(1 + x)`` for ``x >= 0``, given ``rounded``, ``1 + x`` as computed (within a few
    ulps), and accurate where that rounds: Goldberg's identity, ``log(u) * x / (u - 1)``
    with ``u = rounded``, ``x`` itself where ``u`` is 1. XLA's ``log1p`` made ListMLE's value
    and gradient 5-7% slower on a 2-core CPU at (1024, 200), and ``u`` computed here as ``1 +
    x`` would be no use: XLA folds ``(1 + x) - 1`` into ``x``."""
    u = rounded
    return jnp.where(u == 1.0, x, jnp.log(u) * (x / jnp.where(u == 1.0, 1.0, u - 1.0)))


def _valid_places(count, length: int):
    """[L, N]: whether place ``p`` of list ``r`` holds a valid item (the first ``count[r]``)."""
    return lax.broadcasted_iota(jnp.int32, (length, count.shape[0]), 0) < count


def _listmle_fwd(rows, where, count, arrangement, weights, method, fallback):
    # Where one shift fits (``_one_shift``: scores of a model in training), the suffix
    # log-sum-exp is ``top + log S`` with S a running sum of ``share = exp(s - top)``, ``top``
    # each list's largest score: one exp per item and two running sums (value and gradient)
    # that each compile to one fused loop. Otherwise (spans of 1e3, infinities) the values
    # come from a running max and a rescaled sum kept step by step (``_running_max_sum``), so
    # nothing overflows or underflows for any finite input. That fallback sits in a
    # ``lax.cond`` of its own, which moves the scores into the label order itself, and the
    # fused path stays outside it: a branch's outputs are copied out.
    # Without ``fallback`` (``one_shift_only``) the one shift's values are all there is.
    top, fits = _one_shift(rows, where, count, weights)
    share = jnp.where(where, jnp.exp(rows - top), 0.0)  # the order's no matter
    total, per_list = _suffix_sums(to_columns(share, arrangement), count, weights, method)
    residuals = (rows, where, count, arrangement, weights, share, total, fits)
    if not fallback:
        return per_list, residuals

    def running_max():
        ranked, valid = to_columns(rows, arrangement), _valid_places(count, rows.shape[-1])
        high, log_total = _running_max_parts(ranked, valid, method)
        # c_i - s_i = (high_i - s_i) + log(total_i): both parts small, no cancellation at |c|.
        return _weighted_sum(weights, valid, (high - ranked) + log_total)

    return lax.cond(fits, lambda: per_list, running_max), residuals


def _running_max_parts(ranked, valid, method):
    high, total = _running_max_sum(ranked, valid, method=method, reverse=True)
    return jnp.where(valid, high, 0.0), jnp.log(jnp.where(valid, total, 1.0))


def _weighted_sum(weights, valid, terms):
    """The sum over each column's valid places of ``weights * terms`` (weights None: 1)."""
    weighted = terms if weights is None else weights * terms
    return jnp.sum(jnp.where(valid, weighted, 0.0), axis=0)


def _listmle_bwd(method, fallback, residuals, cotangent):
    # d/ds_k = sum_{valid i <= k} w_i exp(s_k - c_i) - w_k, c the suffix log-sum-exp; with one
    # shift exp(s_k - c_i) = share_k / S_i, so the sum over i <= k is a running sum of w_i / S_i
    # (``pull``), moved back to the rows where ``share`` is.
    rows, where, count, arrangement, weights, share, total, fits = residuals
    valid = _valid_places(count, rows.shape[-1])
    # each item's weight, its place's (weights shared by every list stay [L, 1] until here)
    item_weights = None if weights is None else to_rows(jnp.broadcast_to(weights, valid.shape), arrangement)
    place_weights = jnp.ones((rows.shape[-1], 1), rows.dtype) if weights is None else weights
    inverse = jnp.where(valid, place_weights / jnp.where(valid, total, 1.0), 0.0)
    pull = _running_sum(inverse, method, reverse=False)
    grad = share * to_rows(pull, arrangement) - (1.0 if item_weights is None else item_weights)
    if fallback:

        def running_max():
            ranked = to_columns(rows, arrangement)
            parts = _running_max_parts(ranked, valid, method)
            return to_rows(_running_max_grad(ranked, valid, place_weights, *parts, method), arrangement)

        # The branch not taken writes zeros: the fused gradient above is not copied out.
        grad = jnp.where(fits, grad, lax.cond(fits, lambda: jnp.zeros_like(grad), running_max))
    return cotangent[:, None] * jnp.where(where, grad, 0.0), None, None, None, None


def _running_max_grad(ranked, valid, weights, high, log_total, method):
    weights = jnp.where(valid, weights, 0.0)  # [L, N]
    # d/ds_k = p_k * T_k - w_k, with p_k = exp(s_k - c_k) <= 1 and T_k = sum_{i <= k} w_i
    # exp(c_k - c_i), which obeys T_k = w_k + exp(c_k - c_{k-1}) * T_{k-1} (c never increases
    # along the ranking, so every factor is <= 1). Differences of c are taken on (high, log
    # total) separately, so no rounding at the magnitude of c enters; no overflow for any
    # finite input. Lists are columns ([L, N]).

    def shifted(x):  # x_{k-1}, with x_0 for k = 0
        return jnp.concatenate([x[:1], x[:-1]], axis=0)

    decay = jnp.where(valid, jnp.exp((high - shifted(high)) + (log_total - shifted(log_total))), 0.0)
    if method == "scan":

        def step(carry, column):
            total, error = carry
            factor, one = column
            total, error = _kahan_add(factor * total, factor * error, one)
            return (total, error), total

        init = (jnp.zeros(ranked.shape[1:], ranked.dtype),) * 2
        _, totals = lax.scan(step, init, (decay, weights))
    else:

        def compose(first, second):  # affine maps T -> a * T + b: first, then second
            (a1, b1), (a2, b2) = first, second
            return a1 * a2, a2 * b1 + b2

        _, totals = lax.associative_scan(compose, (decay, weights), axis=0)
    own = jnp.exp(jnp.where(valid, (ranked - high) - log_total, 0.0))
    return own * totals - weights


_listmle_core.defvjp(_listmle_fwd, _listmle_bwd)
# Compiled as one unit even when the caller runs eagerly: op by op, the log-depth scan would
# dispatch (and compile) hundreds of small operations. Under an outer jit it is inlined.
_listmle_compiled = jax.jit(_listmle_core, static_argnums=(5, 6))


def listmle_loss(
    scores,
    labels,
    *,
    where=None,
    tie_break=None,
    key: jax.Array | None = None,
    levels=None,
    order=None,
    method: str = "auto",
    reduction: str = "mean",
):
    """ListMLE: the Plackett–Luce negative log-likelihood of the label-sorted permutation.

    With pi sorting labels descending (ties by ascending ``tie_break``, then position),
    per list: ``loss = sum_{valid i} [ log sum_{valid j, pi(j) >= pi(i)} exp(s_j) - s_i ]``.

    Args:
      scores: [..., L] float array.
      labels: [..., L] array of relevance labels (higher = better).
      where: [..., L] bool array, True = valid item; None = all valid.
      tie_break: [..., L] float array; tied labels are ordered by ascending tie_break.
      key: a PRNG key that draws a uniform ``tie_break`` (random tie order); not with
        ``tie_break``.
      levels: the values the valid labels take, when they are few and known (ratings
        ``(1, 2, 3, 4, 5)``, grades ``range(5)``): the label order is then found by a
        counting pass over those levels (``jax_ltr._label_order.level_rank``), and a valid label
        outside them is a ``ValueError`` outside ``jit``; under ``jit`` that list's loss is
        NaN (the trainer's guard stops on it). Without ``levels`` small-integer labels are
        counted too, found at run time (``jax_ltr._label_order.descending_places``; on CPU, where
        counting beats sorting), and any others sorted by single-operand integer sorts
        (``descending_order``), never a comparison sort. A ``tie_break`` holding each item's
        rank in a random order of its list (a permutation of ``0 .. L-1``) is applied as a
        gather of the list before that, costing no sort of its own; any other ``tie_break``
        is one more sort. Every way gives the same order.
      order: [..., L] integer array, the label order itself (``label_order``, computed in
        NumPy): each list's item indices, the best label first, every invalid item after
        every valid one, ties as the caller wants them. Then the call holds no ordering of
        its own; not with ``tie_break``, ``key`` or ``levels``. An ``order`` that is not one
        (an index missing or repeated, a valid item after an invalid one, a valid label above
        the one before it) is a ``ValueError`` outside ``jit``; under ``jit`` that list's
        loss is NaN.
      method: how the suffix log-sum-exp is computed (see ``suffix_logsumexp``); every
        method gives the same values.
      reduction: "none" → per-list losses [...]; "sum"; "mean" → over lists with at least
        two valid items (0 when there is none).

    Returns:
      The reduced loss, in the scores' dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> float(listmle_loss(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0])))  # log 2
      0.6931471824645996
    """
    return _listmle(
        scores, labels, where, tie_break, key, levels, method, reduction, place_weights=None, order=order
    )


# Top-k ListMLE picks its first k places one pass each (``first_places``) rather than
# ordering the whole list, up to this k; beyond it the full order is cheaper.
FIRST_PLACES_MAX = 16


def _listmle(
    scores, labels, where, tie_break, key, levels, method, reduction, *, place_weights, first=None, order=None
):
    """ListMLE with the places of the label order weighted by ``place_weights(L)`` (a [L]
    NumPy array; None: all 1): ``listmle_loss`` and its top-k and position-aware forms.
    ``first``: only the first places weigh (top-k ListMLE's ``k``), so without a tie order
    and for ``first`` up to ``FIRST_PLACES_MAX`` below L only those are ordered
    (``_first_places_listmle``). ``order``: the label order, given (``label_order``)."""
    check_reduction(reduction)
    method = _check_method(method)
    levels = check_levels(levels)
    out_dtype = as_array(scores, "scores").dtype
    if order is not None and (tie_break is not None or key is not None or levels is not None):
        raise ValueError("order is the label order itself: give it without tie_break, key or levels")
    if key is not None:
        if tie_break is not None:
            raise ValueError("give tie_break or key, not both")
        tie_break = jax.random.uniform(key, jnp.shape(scores))
    scores, labels, where, tie_break = check_inputs(scores, labels, where, tie_break)
    weights = None if place_weights is None else place_weights(scores.shape[-1])
    in_levels = None if levels is None else labels_in_levels(labels, where, levels)  # raises first
    scores = jnp.where(where, scores, 0.0)
    length = scores.shape[-1]
    count = jnp.sum(where, axis=-1)  # valid items per list
    in_order = None
    if order is not None:
        order, in_order = _given_order(order, labels, where, count)
    if (
        order is None
        and tie_break is None
        and first is not None
        and first < length
        and first <= FIRST_PLACES_MAX
    ):
        per_list = _first_places_listmle(scores, labels, where, first)
    else:
        if order is not None:
            index, is_order = order, jnp.asarray(True)
        elif levels is not None and tie_break is None and counting_beats_sorting():
            index, is_order = level_rank(labels, where, levels), jnp.asarray(False)
        else:
            index, is_order = label_arrangement(labels, where, tie_break)
        arrangement = (rows_of(index), is_order)  # valid items come first
        weights = None if weights is None else jnp.asarray(weights)[:, None]  # shared by every list
        lists = (rows_of(scores), rows_of(where), count.reshape(-1))
        per_list = listmle_rows(*lists, arrangement, weights, method).reshape(count.shape)
    for holds in (in_levels, in_order):
        if holds is not None:
            per_list = jnp.where(holds, per_list, jnp.nan)
    per_list = nan_for_bad_labels(per_list, labels, where)
    return safe_reduce(per_list, count >= 2, reduction).astype(out_dtype)


def label_order(labels, where=None) -> np.ndarray:
    """Each list's items in label order, in NumPy: ``[..., L]`` int32 item indices, the best
    label first, tied labels by position, the invalid items after the valid ones (by
    position; a valid NaN label goes after them too, as in the PyTorch reference's sort, and
    the loss is NaN for its list). The ``order`` the ListMLE losses take, so that a compiled
    step holds no ordering of its own: the JAX trainer computes it on the host for each
    batch. Labels are ordered as given: give them in the dtype the loss sees (the scores'),
    or two labels that round to one value there may come in another order than the loss's
    own call would give them (both are label orders).

    Example:
      >>> label_order([[1.0, 3.0, 3.0, 2.0]], [[True, True, True, False]]).tolist()
      [[1, 2, 0, 3]]
    """
    labels = as_host_array(labels, "labels")
    if labels.ndim < 1 or labels.dtype.kind not in "uif":
        raise ValueError(
            f"labels must be a numeric array with a list axis (at least 1-D), got shape "
            f"{labels.shape} and dtype {labels.dtype}"
        )
    if labels.dtype.kind in "ui":  # negated below: no wrap-around at the type's bottom
        labels = labels.astype(np.float64)
    where = np.ones(labels.shape, bool) if where is None else as_host_array(where, "where")
    if where.shape != labels.shape or where.dtype != bool:
        raise ValueError(
            f"where must be a boolean mask shaped like labels {labels.shape}, got shape "
            f"{where.shape} and dtype {where.dtype}"
        )
    negated = np.where(where, -labels, 0)  # + 0 where invalid (NaN there must not count)
    with np.errstate(invalid="ignore"):
        span = np.abs(negated).max(initial=0)  # NaN if any valid label is NaN
        small = bool(span < 2**14 and (negated == np.rint(negated)).all())
    if small:  # small whole numbers (ratings, grades): integer keys, which NumPy sorts by radix,
        # in one pass for int8 (about half the time of int16's two at [32, 1024] on a 2-core CPU)
        kind = np.int8 if span < 2**6 else np.int16  # the invalid items after: the type's top
        key = np.where(where, negated.astype(kind), np.iinfo(kind).max)
    else:
        key = np.where(where, negated.astype(np.float64), np.inf)
    return np.argsort(key, axis=-1, kind="stable").astype(np.int32)


def _given_order(order, labels, where, count):
    """``(order, holds)``: a given label order as int32 and, per list, whether it is one:
    every index once, the valid items first, their labels not increasing along it. Outside
    ``jit`` an order that is not is a ``ValueError``; under ``jit`` its list's loss is NaN.
    ``count``: each list's valid items [...]."""
    order = as_array(order, "order")
    if order.shape != labels.shape or not jnp.issubdtype(order.dtype, jnp.integer):
        raise ValueError(
            f"order must be an integer array shaped like labels {labels.shape}, got "
            f"shape {order.shape} and dtype {order.dtype}"
        )
    order = order.astype(jnp.int32)
    length = labels.shape[-1]
    position = lax.broadcasted_iota(jnp.int32, order.shape, order.ndim - 1)
    inside = (order >= 0) & (order < length)
    safe = jnp.where(inside, order, 0)
    _, once = checked_inverse(safe)  # every place hit: every index once
    ranked_labels, ranked_valid = take(labels, safe), take(where, safe)
    first_valid = ranked_valid == (position < count[..., None])
    descending = (ranked_labels[..., :-1] >= ranked_labels[..., 1:]) | ~ranked_valid[..., 1:]
    holds = jnp.all(inside & once & first_valid, axis=-1) & jnp.all(descending, axis=-1)
    if is_concrete(holds) and not bool(np.all(np.asarray(holds))):
        raise ValueError(
            "order must be each list's label order (label_order): every index 0 .. L-1 once, "
            "valid items first, their labels not increasing"
        )
    return safe, holds


@functools.partial(jax.jit, static_argnums=3)  # one unit when called eagerly, as below
def _first_places_listmle(scores, labels, where, k: int):
    """Per-list top-k ListMLE from the first ``k`` places alone (``first_places``).

    The suffix log-sum-exp at place ``p < k`` covers the picked scores from ``p`` on and
    every valid item not picked: one masked sum for the rest, then ``k`` steps back to the
    top. As in the full path's way for wide spans it is kept as a running max and a rescaled
    sum, so each term ``(high - s) + log(total)`` is a sum of small parts, with no rounding
    at the log-sum-exp's magnitude (scores of 1e4 in float32), and nothing overflows. The max is
    held out of the gradient (the value does not depend on it); the rest is JAX's, through
    the gathers of the picked scores.
    """
    order, chosen, rest = first_places(labels, where, k)
    picked = take(scores, order)
    high = lax.stop_gradient(jnp.max(jnp.where(rest, scores, -jnp.inf), axis=-1, initial=-jnp.inf))
    shift = jnp.where(jnp.isfinite(high), high, 0.0)[..., None]
    total = jnp.sum(jnp.exp(jnp.where(rest, scores - shift, -jnp.inf)), axis=-1)  # 0: nothing left

    def step(carry, column):
        high, total = carry
        score, valid = column
        top = lax.stop_gradient(jnp.where(total > 0, jnp.maximum(high, score), score))
        grown = total * jnp.exp(jnp.minimum(high - top, 0.0)) + jnp.exp(score - top)
        term = (top - score) + jnp.log(grown)
        carry = (jnp.where(valid, top, high), jnp.where(valid, grown, total))
        return carry, jnp.where(valid, term, 0.0)

    columns = (jnp.moveaxis(picked, -1, 0), jnp.moveaxis(chosen, -1, 0))
    _, terms = lax.scan(step, (high, total), columns, reverse=True)
    return jnp.sum(terms, axis=0)


def pairwise_pl_loss(scores, labels, *, where=None, pairs=None, reduction: str = "mean"):
    """Pairwise Plackett–Luce: ``-log sigma(s_i - s_j)`` for pairs with ``y_i > y_j``.

    ``P(i before j) = sigma(s_i - s_j)``; the term is written ``softplus(s_j - s_i)``
    (``logaddexp(., 0)``), which cannot overflow.

    Args:
      scores: [..., L] float array.
      labels: [..., L] array.
      where: [..., L] bool array, True = valid item.
      pairs: None → every valid pair with different labels, swept in blocks (memory
        O(B·L·8), value and gradient in one pass; differentiable in reverse mode —
        ``jax.grad``/``jax.vjp`` — not in forward mode); or a tuple
        ``(list_index, i_index, j_index)`` of [P] integer arrays, ``list_index`` into the
        flattened leading axes. Either orientation counts; pairs with an invalid item or
        equal labels count as nothing. An index out of range is a ``ValueError`` naming it
        outside ``jit``; under ``jit`` (where JAX gathers would clamp it) it makes every
        list's value NaN.
      reduction: "none" → per-list sums [...]; "sum"; "mean" → over counted pairs.

    Returns:
      The reduced loss, in the scores' dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> float(pairwise_pl_loss(jnp.array([0.0, 0.0]), jnp.array([2.0, 1.0])))  # log 2
      0.6931471824645996
    """
    check_reduction(reduction)
    out_dtype = as_array(scores, "scores").dtype
    scores, labels, where, _ = check_inputs(scores, labels, where)
    scores = jnp.where(where, scores, 0.0)
    labels = jnp.where(where, labels, 0.0)
    batch_shape = scores.shape[:-1]
    if pairs is None and scores.shape[-1] == 0:  # empty lists: nothing to pair
        per_list, count = jnp.zeros(batch_shape, scores.dtype), jnp.zeros((), scores.dtype)
    elif pairs is None:
        length = scores.shape[-1]
        flat = (x.reshape(-1, length) for x in (scores, labels, where))
        per_list, count = all_pairs_loss(*flat, (), PAIR_BLOCK, None)
        per_list, count = per_list.reshape(batch_shape), count.sum()
    else:
        list_index, i_index, j_index = _check_pairs(pairs, scores.shape)
        flat_s = scores.reshape(-1, scores.shape[-1])
        # labels compared by their integer keys, as in the sweep (``_sweeps._all_pairs``)
        flat_y = sort_keys(labels, where, descending=False).reshape(-1, scores.shape[-1])
        flat_w = where.reshape(-1, scores.shape[-1])
        y_i, y_j = flat_y[list_index, i_index], flat_y[list_index, j_index]
        counted = flat_w[list_index, i_index] & flat_w[list_index, j_index] & (y_i != y_j)
        margin = flat_s[list_index, i_index] - flat_s[list_index, j_index]
        terms = pair_terms(jnp.where(y_i > y_j, margin, -margin), counted)
        num_lists = flat_s.shape[0]
        per_list = jax.ops.segment_sum(terms, list_index, num_segments=num_lists).reshape(batch_shape)
        count = counted.sum(dtype=scores.dtype)
        # Under jit an index out of range cannot be refused, and a gather would silently clamp
        # it to the edge: every list's value becomes NaN instead (the pair's list is unknown).
        outside = _pairs_out_of_range((list_index, i_index, j_index), scores.shape)
        per_list = jnp.where(outside, jnp.nan, per_list)
    per_list = nan_for_bad_labels(per_list, labels, where)
    return safe_reduce(per_list, count, reduction).astype(out_dtype)


def _pairs_out_of_range(pairs, shape):
    """Scalar bool: some pair index lies outside its axis."""
    outside = jnp.zeros((), bool)
    for p, bound in zip(pairs, checks.pair_bounds(shape), strict=True):
        outside |= jnp.any((p < 0) | (p >= bound))
    return outside


def _check_pairs(pairs, shape):
    infos = None
    if isinstance(pairs, tuple | list) and len(pairs) == 3:
        pairs = tuple(as_array(p, f"pairs: {name}") for p, name in zip(pairs, checks.PAIR_NAMES, strict=True))
        infos = [array_info(p) for p in pairs]
    checks.check_pairs(pairs, infos, shape)
    # Ranges only of concrete indices (as NumPy: no tracer when a jitted caller closes over them).
    ranges = [
        (int(host.min()), int(host.max())) if is_concrete(p) and (host := np.asarray(p)).size else None
        for p in pairs
    ]
    checks.check_pair_ranges(ranges, shape)
    return pairs


def hybrid_loss(
    scores,
    labels,
    *,
    alpha: float = 0.7,
    where=None,
    tie_break=None,
    key: jax.Array | None = None,
    levels=None,
    order=None,
    pairs=None,
    method: str = "auto",
    reduction: str = "mean",
):
    """``alpha * listmle_loss + (1 - alpha) * pairwise_pl_loss``, each reduced by ``reduction``.

    Args:
      scores, labels, where: as in ``listmle_loss``.
      alpha: weight of ListMLE, a number in [0, 1] or a 0-d array holding one (outside it a
        ``ValueError``); a traced one (a schedule under ``jit``) outside [0, 1] makes the
        value NaN.
      tie_break, key, levels, order, method: passed to ``listmle_loss``.
      pairs: passed to ``pairwise_pl_loss``.
      reduction: "none", "sum" or "mean", applied to each part.

    Returns:
      The weighted sum.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(hybrid_loss(jnp.array([0.0, 0.0]), jnp.array([1.0, 0.0]), alpha=0.5)), 6)
      0.693147
    """
    if is_concrete(alpha):
        alpha = checks.check_weight(alpha, "alpha")
    if pairs is not None:  # refused before anything is computed, as every other argument
        _check_pairs(pairs, as_array(scores, "scores").shape)
    listwise = listmle_loss(
        scores,
        labels,
        where=where,
        tie_break=tie_break,
        key=key,
        levels=levels,
        order=order,
        method=method,
        reduction=reduction,
    )
    pairwise = pairwise_pl_loss(scores, labels, where=where, pairs=pairs, reduction=reduction)
    if is_concrete(alpha):
        return mix(alpha, listwise, pairwise)
    # in the scores' type, as every loss returns, whatever the traced alpha's type
    mixed = jnp.where((alpha >= 0) & (alpha <= 1), mix(alpha, listwise, pairwise), jnp.nan)
    return mixed.astype(listwise.dtype)


def topk_listmle_loss(
    scores,
    labels,
    *,
    k: int | None = 10,
    where=None,
    tie_break=None,
    key: jax.Array | None = None,
    levels=None,
    order=None,
    method: str = "auto",
    reduction: str = "mean",
):
    """Top-k ListMLE (Xia, Liu & Li, 2009): the Plackett–Luce likelihood of the first ``k``
    places of the label order only.

    Per list: ``sum_{valid i, place(i) < k} [ log sum_{valid j, place(j) >= place(i)} exp(s_j)
    - s_i ]``: the items past place ``k`` still compete for the first ``k`` places, but their
    own order does not count. ``k=None`` (or ``k`` >= the list) is ``listmle_loss``. Other
    arguments, the order of ties and "mean" (over lists with at least two valid items) as in
    ``listmle_loss``. Without ``tie_break``/``key``/``order`` and for ``k`` up to ``FIRST_PLACES_MAX``
    (16) below the list's length only the first ``k`` places are ordered, one pass over the
    list each (``jax_ltr._label_order.first_places``: exact, ties by position), and the rest enters
    as one masked log-sum-exp; otherwise the whole label order and ListMLE's closed-form
    gradient serve. ``method`` matters only on that second path.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(topk_listmle_loss(jnp.zeros(3), jnp.array([2.0, 1.0, 0.0]), k=1)), 6)  # log 3
      1.098612
    """
    places = functools.partial(top_k_weights, k)
    return _listmle(
        scores,
        labels,
        where,
        tie_break,
        key,
        levels,
        method,
        reduction,
        place_weights=places,
        first=k,
        order=order,
    )


def position_listmle_loss(
    scores,
    labels,
    *,
    weights="dcg",
    where=None,
    tie_break=None,
    key: jax.Array | None = None,
    levels=None,
    order=None,
    method: str = "auto",
    reduction: str = "mean",
):
    """Position-aware ListMLE (Lan et al., 2014): each place's term of the ListMLE sum weighted.

    Per list: ``sum_{valid i} w_{place(i)} [ log sum_{valid j, place(j) >= place(i)} exp(s_j)
    - s_i ]``. ``weights``: "dcg" (default: ``w_p = 1 / log2(p + 2)`` for places ``p = 0, 1,
    ...``, decreasing, so mistakes at the top cost most, as the paper requires for consistency
    with NDCG-like measures) or a 1-D sequence of numbers >= 0 for the first places (later
    places weigh 0); ``ltr_common.losses.position_weights``. Other arguments as in
    ``listmle_loss``.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(position_listmle_loss(jnp.zeros(2), jnp.array([1.0, 0.0]), weights=[2.0])), 6)
      1.386294
    """
    places = functools.partial(position_weights, weights)
    return _listmle(
        scores, labels, where, tie_break, key, levels, method, reduction, place_weights=places, order=order
    )


def softmax_loss(scores, labels, *, where=None, reduction: str = "mean"):
    """Softmax cross-entropy, ListNet's top-one form (Cao et al., 2007).

    Per list: ``-sum_{valid i} p_i log softmax(s)_i`` with ``p = labels / sum(labels)`` over the
    valid items, i.e. ``logsumexp(s) - sum_i p_i s_i``. Labels must be >= 0. A list whose
    valid labels sum to 0 (nothing relevant) has no target distribution: it contributes 0 and
    is not counted. Labels up to float32's largest number serve: a list with a label above 2^64
    is first scaled by 2^-64 (exact), so that its sum stays finite and the sum's reciprocal,
    which XLA on CPU divides by, a normal number (not flushed to 0).

    Args:
      scores: [..., L] float array.
      labels: [..., L] array of labels >= 0.
      where: [..., L] bool array, True = valid item.
      reduction: "none" → per-list values [...]; "sum"; "mean" → over lists whose labels sum
        to more than 0.

    Returns:
      The reduced loss, in the scores' dtype. A negative valid label is a ``ValueError``
      outside ``jit``; under ``jit`` it makes that list's value NaN.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(softmax_loss(jnp.zeros(2), jnp.array([1.0, 0.0]))), 6)  # log 2
      0.693147
    """
    check_reduction(reduction)
    out_dtype = as_array(scores, "scores").dtype
    scores, labels, where, _ = check_inputs(scores, labels, where)
    check_label_range(labels, where)
    labels = jnp.where(where, labels, 0.0)
    labels = labels * jnp.where(jnp.any(labels > 2.0**64, axis=-1, keepdims=True), 2.0**-64, 1.0)
    scores = jnp.where(where, scores, -jnp.inf)
    total = jnp.sum(labels, axis=-1, keepdims=True)
    counted = total[..., 0] > 0
    target = labels / jnp.where(total > 0, total, 1.0)
    high = lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True, initial=-jnp.inf))
    high = jnp.where(jnp.isfinite(high), high, 0.0)
    shifted = jnp.where(where, scores - high, 0.0)  # the log-softmax, shift-invariant
    norm = jnp.sum(jnp.where(where, jnp.exp(shifted), 0.0), axis=-1, keepdims=True)
    log_norm = jnp.log(jnp.where(norm > 0, norm, 1.0))  # an empty list: log 1, no NaN gradient
    per_list = jnp.sum(jnp.where(where, target * (log_norm - shifted), 0.0), axis=-1)
    per_list = jnp.where(counted, per_list, 0.0)
    per_list = nan_for_bad_labels(per_list, labels, where, in_range=(0.0, jnp.inf))
    return safe_reduce(per_list, counted, reduction).astype(out_dtype)


def sigmoid_cross_entropy_loss(scores, labels, *, where=None, threshold=None, reduction: str = "mean"):
    """Pointwise sigmoid cross-entropy: each valid item's logistic loss against its relevance.

    Per item ``-t log sigma(s) - (1 - t) log(1 - sigma(s)) = softplus(s) - t s``, softplus as
    ``logaddexp(s, 0)`` (no overflow); per list, the sum over valid items.

    Args:
      scores: [..., L] float array (logits).
      labels: [..., L] array: targets in [0, 1], or with ``threshold`` any labels, relevant
        (``t = 1``) where ``label >= threshold`` (``threshold=1`` on the retrieve task's lists:
        every rated item against the sampled unrated ones, labelled 0).
      where: [..., L] bool array, True = valid item.
      threshold: None, or the label from which an item counts as relevant.
      reduction: "none" → per-list sums [...]; "sum"; "mean" → over valid items.

    Returns:
      The reduced loss, in the scores' dtype. Without ``threshold``, a valid label outside
      [0, 1] is a ``ValueError`` outside ``jit`` and makes that list NaN under ``jit``.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(sigmoid_cross_entropy_loss(jnp.zeros(2), jnp.array([1.0, 0.0]))), 6)  # log 2
      0.693147
    """
    check_reduction(reduction)
    threshold = checks.check_threshold(threshold)
    out_dtype = as_array(scores, "scores").dtype
    scores, labels, where, _ = check_inputs(scores, labels, where)
    if threshold is None:
        check_label_range(labels, where, high=1.0)
    labels = jnp.where(where, labels, 0.0)
    target = labels if threshold is None else (labels >= threshold).astype(scores.dtype)
    s = jnp.where(where, scores, 0.0)
    # softplus: exact gradient sigma(s) - t, at 0 too. An infinite logit costs 0 where its
    # target agrees and +inf where it does not, without inf - inf or 0 * inf (nor their NaN
    # in the gradient): set apart, at the cost of two selects; its gradient is 0 (where the
    # loss is +inf, no step follows it: the trainers stop on a non-finite loss).
    infinite = jnp.isinf(s)
    agrees = jnp.where(s > 0, target == 1, target == 0)
    finite = jnp.where(infinite, 0.0, s)
    terms = jnp.where(infinite, jnp.where(agrees, 0.0, jnp.inf), jnp.logaddexp(finite, 0.0) - target * finite)
    per_list = jnp.sum(jnp.where(where, terms, 0.0), axis=-1)
    in_range = (0.0, 1.0) if threshold is None else None
    per_list = nan_for_bad_labels(per_list, labels, where, in_range=in_range)
    return safe_reduce(per_list, where, reduction).astype(out_dtype)


def _ideal_dcg(gains, labels, where):
    """Each list's DCG in its label order (the best possible): ``sum_p g_(p) / log2(p + 2)``."""
    discount = 1.0 / jnp.log2(jnp.arange(gains.shape[-1], dtype=gains.dtype) + 2.0)
    return jnp.sum(take(gains, descending_order(labels, where)) * discount, axis=-1)


def approx_ndcg_loss(scores, labels, *, where=None, temperature: float = 1.0, reduction: str = "mean"):
    """ApproxNDCG (Qin, Liu & Li, 2010): one minus NDCG with each item's rank made smooth.

    ``r_i = 1 + sum_{valid j != i} sigma((s_j - s_i) / temperature)`` replaces the rank, and
    per list the loss is ``1 - sum_i (2^{y_i} - 1) / log2(1 + r_i) / IDCG``, IDCG the DCG of the
    label order (exact ranks). The rank sums run over blocks of 16 items (memory O(B·L·16),
    a custom VJP of the same form: never a [B, L, L] array). Rax's ``approx_t12n(ndcg_metric)``
    is ``-`` the same NDCG: the values differ by 1, the gradients are equal. Labels must lie in
    [0, 64] (``ltr_common.checks.GAIN_LABEL_MAX``); a list with nothing relevant (IDCG 0)
    contributes 0 and is not counted. Score differences are multiplied by ``1 / temperature``,
    which must be a normal float32 number (``ltr_common.checks.TEMPERATURE_RANGE``): so a
    temperature below float32's normal range (which XLA on CPU would read as 0) still gives the
    true ranks, as in PyTorch.

    Args:
      scores: [..., L] float array.
      labels: [..., L] graded relevance in [0, 64].
      where: [..., L] bool array, True = valid item.
      temperature: in about [2.9e-39, 8.5e37]; smaller is closer to the true ranks (and to a
        step function).
      reduction: "none" → per-list values [...]; "sum"; "mean" → over lists with IDCG > 0.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(approx_ndcg_loss(jnp.array([-1.0, 1.0, 0.0]), jnp.array([0.0, 0.0, 1.0]))), 6)
      0.36907
    """
    check_reduction(reduction)
    inverse_temperature = checks.check_temperature(temperature)
    out_dtype = as_array(scores, "scores").dtype
    scores, labels, where, _ = check_inputs(scores, labels, where)
    check_label_range(labels, where, high=GAIN_LABEL_MAX)
    labels = jnp.where(where, labels, 0.0)
    gains = jnp.where(where, jnp.exp2(labels) - 1.0, 0.0)
    length = scores.shape[-1]
    batch_shape = scores.shape[:-1]
    if length == 0:
        per_list, counted = jnp.zeros(batch_shape, scores.dtype), jnp.zeros(batch_shape, bool)
        return safe_reduce(per_list, counted, reduction).astype(out_dtype)
    ideal = _ideal_dcg(gains, labels, where)
    flat = (x.reshape(-1, length) for x in (jnp.where(where, scores, 0.0), where))
    ranks = smooth_ranks(*flat, inverse_temperature, RANK_BLOCK).reshape(scores.shape)
    dcg = jnp.sum(jnp.where(where, gains / jnp.log2(1.0 + ranks), 0.0), axis=-1)
    counted = ideal > 0
    per_list = jnp.where(counted, 1.0 - dcg / jnp.where(counted, ideal, 1.0), 0.0)
    per_list = nan_for_bad_labels(per_list, labels, where, in_range=GAIN_RANGE)
    return safe_reduce(per_list, counted, reduction).astype(out_dtype)


def lambda_loss(
    scores,
    labels,
    *,
    where=None,
    weighting: str = "ndcg_loss2++",
    mu: float = 10.0,
    normalize: bool = True,
    reduction: str = "mean",
):
    """LambdaLoss (Wang et al., 2018): a pairwise logistic loss weighted by ranks and gains.

    Per list ``sum_{valid i, j: y_i > y_j} lambda_ij softplus(s_j - s_i)``, the scores' own
    ranks ``r`` (1-based, ties by position) and gains ``G = n (2^y - 1) / IDCG`` (``n`` the
    valid items; without ``normalize``, no division by IDCG), ``d(r) = 1 / log2(1 + r)``:

    * "ndcg_loss2++": ``|G_i - G_j| (|d(r_i) - d(r_j)| + mu (d(|r_i - r_j|) - d(|r_i - r_j| +
      1)))`` — NDCG-Loss2++, the LambdaRank term plus ``mu`` of NDCG-Loss2's;
    * "ndcg_loss2": ``|G_i - G_j| (d(|r_i - r_j|) - d(|r_i - r_j| + 1))``;
    * "dcg": ``|G_i - G_j| |d(r_i) - d(r_j)|`` (LambdaRank's weights);
    * "label_diff": ``|y_i - y_j|`` (no gains: any real labels).

    These are Rax's ``pairwise_logistic_loss`` with ``dcg_lambdaweight(normalize=True)`` +
    ``mu * dcg2_lambdaweight(normalize=True)``, ``dcg2_lambdaweight``, ``dcg_lambdaweight`` and
    ``labeldiff_lambdaweight``, except that Rax scales its DCG weights by the padded list
    width where the factor ``n`` here counts valid items (padding changes nothing here). The
    weights are constants of the scores' gradient (ranks are piecewise constant), and the
    unweighted loss is ``pairwise_pl_loss``. Pairs are swept in blocks as there: memory
    O(B·L·8), value and gradient in one pass; differentiable in reverse mode. The labels are
    differentiable too, through the gains or label gaps of the weights, as in PyTorch; that
    sum is swept only when the labels are differentiated.

    Args:
      scores: [..., L] float array.
      labels: [..., L] array; in [0, 64] for the gain-based weightings
        (``ltr_common.checks.GAIN_LABEL_MAX``).
      where: [..., L] bool array, True = valid item.
      weighting: "ndcg_loss2++", "ndcg_loss2", "dcg" or "label_diff".
      mu: weight of NDCG-Loss2's term in "ndcg_loss2++", a finite number >= 0.
      normalize: divide the gains by the list's ideal DCG (NDCG rather than DCG weights).
      reduction: "none" → per-list sums [...]; "sum"; "mean" → over valid pairs with
        different labels (Rax's mean).

    Returns:
      The reduced loss, in the scores' dtype. A valid label outside [0, 64] with a gain-based
      weighting is a ``ValueError`` outside ``jit``; under ``jit`` it makes that list NaN.

    Example:
      >>> import jax.numpy as jnp
      >>> scores, labels = jnp.array([0.0, 1.0, 2.0]), jnp.array([2.0, 1.0, 0.0])
      >>> round(float(lambda_loss(scores, labels, weighting="label_diff", reduction="sum")), 4)
      6.8804
    """
    check_reduction(reduction)
    mu = checks.check_lambda_options(weighting, mu, normalize)
    out_dtype = as_array(scores, "scores").dtype
    scores, labels, where, _ = check_inputs(scores, labels, where)
    gain_based = weighting != "label_diff"
    if gain_based:
        check_label_range(labels, where, high=GAIN_LABEL_MAX)
    scores = jnp.where(where, scores, 0.0)
    labels = jnp.where(where, labels, 0.0)
    batch_shape, length = scores.shape[:-1], scores.shape[-1]
    if length == 0:  # empty lists: nothing to pair
        return safe_reduce(jnp.zeros(batch_shape, scores.dtype), 0.0, reduction).astype(out_dtype)
    items = ()
    if gain_based:
        gains = jnp.where(where, jnp.exp2(labels) - 1.0, 0.0)
        scale = jnp.sum(where, axis=-1, keepdims=True).astype(scores.dtype)
        if normalize:
            ideal = _ideal_dcg(gains, labels, where)[..., None]
            scale = scale / jnp.where(ideal > 0, ideal, 1.0)
        order = descending_order(lax.stop_gradient(scores), where)
        places = jnp.broadcast_to(jnp.arange(1, length + 1, dtype=scores.dtype), order.shape)
        ranks = put(places, order)
        items = (gains * scale, ranks, 1.0 / jnp.log2(1.0 + ranks))
    flat = [x.reshape(-1, length) for x in (scores, labels, where)]
    flat_items = tuple(x.reshape(-1, length) for x in items)
    per_list, count = all_pairs_loss(*flat, flat_items, PAIR_BLOCK, (weighting, float(mu)))
    per_list = nan_for_bad_labels(
        per_list.reshape(batch_shape), labels, where, in_range=GAIN_RANGE if gain_based else None
    )
    return safe_reduce(per_list, count.sum(), reduction).astype(out_dtype)


def pointwise_mse_loss(scores, labels, *, where=None, reduction: str = "mean"):
    """Pointwise squared error: ``sum_{valid i} (s_i - y_i)^2`` per list.

    Unlike the ranking losses it sees the labels' absolute values, not only their order, so
    mixed into a listwise objective it lets a model learn absolute item quality.

    Args:
      scores: [..., L] float array.
      labels: [..., L] array (the regression targets).
      where: [..., L] bool array, True = valid item.
      reduction: "none" → per-list sums [...]; "sum"; "mean" → over valid items.

    Returns:
      The reduced loss, in the scores' dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> float(pointwise_mse_loss(jnp.array([1.0, 2.0]), jnp.array([3.0, 2.0])))
      2.0
    """
    check_reduction(reduction)
    out_dtype = as_array(scores, "scores").dtype
    scores, labels, where, _ = check_inputs(scores, labels, where)
    error = jnp.where(where, scores - jnp.where(where, labels, 0.0), 0.0)
    per_list = nan_for_bad_labels(jnp.sum(error * error, axis=-1), labels, where)
    return safe_reduce(per_list, where, reduction).astype(out_dtype)
