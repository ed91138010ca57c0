"""Rounding-error bounds for float32 parity comparisons: ulps × the magnitude of what was summed.

A float computation of a sum carries rounding relative to the sum of the magnitudes of its
terms, not to its result: a list's ListMLE score gradients sum to zero, a user embedding's
gradient adds up terms of both signs, and where terms cancel the result is far smaller than
the rounding it carries. So every float32 tolerance here is

    ``ULPS * eps(float32) * magnitude``,

with ``magnitude`` computed in float64 NumPy from the inputs, per compared entry:

* each summed term counts with the largest number that enters its rounding — for a term
  ``exp(s_k - c_i)`` that is ``1 + |s_k| + |c_i|``, because its exponent is only resolved to
  an ulp of ``|s_k| + |c_i|`` and ``exp`` turns that absolute error into a relative one
  (``|c_i|`` at least the largest |score| of the list: JAX's ListMLE shifts every term by it);
* the accumulation adds about an ulp of the magnitude: JAX's running sums are
  Kahan-compensated or log-depth trees, XLA's reductions are trees, PyTorch's CPU float32
  cumulative sums accumulate in float64 and its float32 sums are cascaded (blocked pairwise:
  about log2(n) roundings, each of a partial sum); float32 matrix products accumulate in
  float32, where a sum of n terms drifts by about sqrt(n) ulps of its magnitude at worst in
  practice (up to 0.9 ulp seen for the 24-term sums of a parameter gradient,
  ``parity_tests/_training.py``), still within the budget below;
* after the sum, up to three more roundings of a result no larger than the magnitude: a
  loss weight (the hybrid's ``alpha``), a mean's division by its count, a cotangent;
* ``ULPS = 8``: each framework lies within ``4 eps × magnitude`` of the exact value — the
  accumulation and those three roundings — and the two errors add.

float64 rows keep the project's fixed standard, ``1e-12 + 1e-12 |reference|``: PyTorch's
float64 cumulative sums have no wider accumulator, so their error grows with the list length
(about 3 ulps of the magnitude at L = 192 here) and the float32 model above does not cover
them; 1e-12 is thousands of float64 ulps and still far below any real mistake.

The magnitudes are upper bounds, not estimates: a wrong gradient (a missing term, a term on
the wrong item, a wrong sign) misses by about a term's size, which is ``1/eps`` times larger
than these tolerances. ``scripts/check_parity.py`` reports the worst observed
``|difference| / tolerance`` per row.
"""

from __future__ import annotations

import numpy as np

from ltr_common.losses import LOSSES, position_weights, top_k_weights

ULPS = 8
FLOAT64 = (1e-12, 1e-12)  # (rtol, atol)
# XLA on CPU flushes subnormal float32 results to zero, PyTorch keeps them: each term of a sum
# may differ by up to the smallest normal number. Sums here have at most 2**14 terms.
FLUSH_FLOOR = 2**14 * float(np.finfo(np.float32).tiny)


def tolerance(magnitude, dtype: str, reference=None) -> np.ndarray:
    """The allowed |difference| between two implementations, entry by entry: float32, ulps
    of the magnitude plus, where anything was summed, the flush-to-zero floor (which matters
    only for entries whose terms all lie near the bottom of the float32 range, e.g. a top-k
    ListMLE gradient past place k, or a softmax probability of exp(-95))."""
    if dtype == "float64":
        rtol, atol = FLOAT64
        return atol + rtol * np.abs(np.asarray(reference, np.float64))
    magnitude = np.asarray(magnitude, np.float64)
    # Where nothing was summed (magnitude 0) both sides must be exactly 0: no floor there.
    return ULPS * float(np.finfo(dtype).eps) * magnitude + np.where(magnitude > 0, FLUSH_FLOOR, 0.0)


def _label_order(labels, where, tie_break=None):
    """Descending labels, ties by ascending ``tie_break`` then position; valid items first."""
    positions = np.broadcast_to(np.arange(labels.shape[-1]), labels.shape)
    ties = np.zeros(labels.shape) if tie_break is None else np.where(where, tie_break, 0.0)
    primary = np.where(where, -np.nan_to_num(labels), np.inf)
    return np.lexsort((positions, ties, primary), axis=-1)


def listmle(scores, labels, where, tie_break=None, *, score_scale=None, weights=None):
    """Per-list value magnitudes [B], per-item gradient magnitudes [B, L] and the mean's count.

    Value ``sum_i w_i (c_i - s_i)`` over the label order: ``sum_i w_i (1 + |c_i| + |s_i|)``.
    Gradient ``d/ds_k = sum_{i <= k} w_i exp(s_k - c_i) - w_k``: ``sum_{i <= k} w_i exp(s_k -
    c_i) (1 + |s_k| + |c_i|) + w_k``. ``weights``: [L] weights of the places (top-k and
    position-aware ListMLE; default 1). ``score_scale`` (default ``|scores|``) replaces ``|s|``
    where the scores themselves carry rounding (the output of a network: the magnitude of the
    sum that made them).
    """
    scores = np.where(where, scores, 0.0).astype(np.float64)
    scale = np.abs(scores) if score_scale is None else np.where(where, score_scale, 0.0)
    order = _label_order(labels, where, tie_break)
    ranked = np.take_along_axis(scores, order, -1)
    ranked_scale = np.take_along_axis(scale, order, -1)
    valid = np.take_along_axis(np.asarray(where, bool), order, -1)
    masked = np.where(valid, ranked, -np.inf)
    suffix = np.flip(np.logaddexp.accumulate(np.flip(masked, -1), axis=-1), -1)  # c_i
    # c_i is resolved to an ulp of the largest magnitude among the list's scores: JAX shifts
    # every term of a list by its largest score (``exp(s_j - top)``), PyTorch's
    # ``logcumsumexp`` by its running maximum; each difference is rounded at that magnitude.
    list_scale = np.max(np.where(valid, ranked_scale, 0.0), axis=-1, keepdims=True, initial=0.0)
    c_abs = np.where(valid, np.maximum(np.abs(suffix), list_scale), 0.0)
    w = np.ones(scores.shape[-1]) if weights is None else np.asarray(weights, np.float64)
    w = np.where(valid, w, 0.0)
    value = (w * np.where(valid, 1.0 + c_abs + ranked_scale, 0.0)).sum(-1)
    # log sum_{i <= k} w_i exp(-c_i) (1 + |c_i|), running along the ranking, overflow-free.
    with np.errstate(divide="ignore"):
        minus_c = np.where(valid, -suffix, -np.inf) + np.log(w)
        log_weighted = np.logaddexp.accumulate(minus_c + np.log1p(c_abs), axis=-1)
    log_plain = np.logaddexp.accumulate(minus_c, axis=-1)
    terms = np.exp(ranked + log_weighted) + ranked_scale * np.exp(ranked + log_plain)
    grad_ranked = np.where(valid, terms + w, 0.0)
    grad = np.zeros_like(grad_ranked)
    np.put_along_axis(grad, order, grad_ranked, -1)
    count = (np.asarray(where).sum(-1) >= 2).sum()
    return value, grad, count


def pairwise(scores, labels, where, pairs=None, *, score_scale=None):
    """Per-list value magnitudes [B], per-item gradient magnitudes [B, L] and the pair count.

    Each counted pair adds ``softplus(s_loser - s_winner)``, whose margin is resolved to an ulp
    of ``|s_i| + |s_j|``: value ``1 + |s_i| + |s_j|`` per pair; gradient ``sigma(-margin) (1 +
    |s_i| + |s_j|)`` on both items. ``pairs=None``: every valid pair with different labels.
    """
    scores = np.where(where, scores, 0.0).astype(np.float64)
    labels = np.where(where, labels, 0.0)
    scale = np.abs(scores) if score_scale is None else np.where(where, score_scale, 0.0)
    flat = [x.reshape(-1, x.shape[-1]) for x in (scores, labels, np.asarray(where, bool), scale)]
    s, y, w, a = flat
    if pairs is None:
        rows, i, j = np.nonzero(w[:, :, None] & w[:, None, :] & (y[:, :, None] > y[:, None, :]))
    else:
        rows, i, j = (np.asarray(p, np.int64) for p in pairs)
        keep = w[rows, i] & w[rows, j] & (y[rows, i] != y[rows, j])
        rows, i, j = rows[keep], i[keep], j[keep]
    winner_first = y[rows, i] > y[rows, j]
    margin = np.where(winner_first, 1.0, -1.0) * (s[rows, i] - s[rows, j])
    size = 1.0 + a[rows, i] + a[rows, j]
    value = np.zeros(len(s))
    np.add.at(value, rows, size)
    grad = np.zeros_like(s)
    pull = size / (1.0 + np.exp(np.clip(margin, -700, 700)))  # sigma(-margin) * size
    np.add.at(grad, (rows, i), pull)
    np.add.at(grad, (rows, j), pull)
    return value.reshape(scores.shape[:-1]), grad.reshape(scores.shape), len(rows)


def pointwise(scores, labels, where, *, score_scale=None):
    """Per-list value magnitudes [B], per-item gradient magnitudes [B, L] and the item count.

    ``(s - y)^2`` is resolved to an ulp of ``(|s| + |y|)`` in its difference: value
    ``(|s| + |y|)^2`` per item, gradient ``2 (|s| + |y|)``.
    """
    scores = np.where(where, scores, 0.0).astype(np.float64)
    labels = np.where(where, labels, 0.0).astype(np.float64)
    scale = np.abs(scores) if score_scale is None else np.where(where, score_scale, 0.0)
    size = np.where(where, scale + np.abs(labels), 0.0)
    return (size * size).sum(-1), 2.0 * size, int(np.asarray(where).sum())


def softmax(scores, labels, where, *, score_scale=None):
    """Per-list value magnitudes [B], per-item gradient magnitudes [B, L] and the list count.

    With ``p = y / sum(y)``, ``m`` the largest valid score and ``z = log sum_j exp(s_j - m)``:
    each term ``p_i (z - (s_i - m))`` is resolved to an ulp of ``1 + |s_i| + |m| + |z|`` (plus
    ``log2 n`` for the rounding of the sum in ``z``), so the value's magnitude is ``sum_i p_i
    (1 + log2 n + |s_i| + |m| + |z|)``. The gradient ``softmax_k * sum(p) - p_k``: ``softmax_k``
    carries the same exponent error relative to itself, ``sum(p)`` ``log2 n`` ulps, ``p_k`` a
    couple: ``softmax_k (1 + log2 n + |s_k| + |m| + |z|) + 2 p_k``.
    """
    where = np.asarray(where, bool)
    scores = np.where(where, scores, 0.0).astype(np.float64)
    labels = np.where(where, labels, 0.0).astype(np.float64)
    scale = np.abs(scores) if score_scale is None else np.where(where, score_scale, 0.0)
    total = labels.sum(-1, keepdims=True)
    p = labels / np.where(total > 0, total, 1.0)
    high = np.where(where, scores, -np.inf).max(-1, keepdims=True, initial=-np.inf)
    high = np.where(np.isfinite(high), high, 0.0)
    with np.errstate(divide="ignore"):
        z = np.log(np.where(where, np.exp(scores - high), 0.0).sum(-1, keepdims=True))
    z = np.where(np.isfinite(z), z, 0.0)
    n = np.maximum(where.sum(-1, keepdims=True), 1)
    size = np.where(where, 1.0 + np.log2(n) + scale + np.abs(high) + np.abs(z), 0.0)
    softmax_k = np.where(where, np.exp(scores - high - z), 0.0)
    value = (p * size).sum(-1)
    grad = np.where(total > 0, softmax_k * size + 2.0 * p, 0.0)
    return value, grad, int((total[..., 0] > 0).sum())


def sigmoid(scores, labels, where, *, score_scale=None):
    """Per-list value magnitudes [B], per-item gradient magnitudes [B, L] and the item count.

    ``max(s, 0) - t s + log1p(exp(-|s|))`` adds terms of size ``|s|`` and at most ``log 2``:
    ``2 (1 + |s|)`` per item. The gradient ``sigma(s) - t``: ``sigma`` computed from
    ``exp(-|s|)``, relatively within an ulp of ``1 + |s|``: ``2 + |s|``.
    """
    where = np.asarray(where, bool)
    scores = np.where(where, scores, 0.0).astype(np.float64)
    scale = np.abs(scores) if score_scale is None else np.where(where, score_scale, 0.0)
    value = np.where(where, 2.0 * (1.0 + scale), 0.0).sum(-1)
    return value, np.where(where, 2.0 + scale, 0.0), int(where.sum())


def approx_ndcg(scores, labels, where, *, temperature=1.0, score_scale=None):
    """Per-list value magnitudes [B], per-item gradient magnitudes [B, L] and the list count.

    The smooth rank ``r_i = 1 + sum_j sigma((s_j - s_i) / T)`` adds terms in [0, 1], each
    off by ``sigma' <= 1/4`` times the rounding of its argument, an ulp of ``(|s_i| + |s_j|)
    / T``: ``r_i`` is resolved to an ulp of ``R_i = 1 + r_i + sum_j (|s_i| + |s_j|) / 4T``.
    ``1 / log2(1 + r)`` moves by at most 0.73 of a change in ``r``, so item ``i`` adds ``g_i
    (2 + R_i)`` to the DCG's magnitude, and the value ``1 - DCG / IDCG`` has ``1 + sum_i g_i
    (2 + R_i) / IDCG + log2(n + 1) DCG / IDCG``. The gradient ``(1/T) sum_j sigma'_jk (c_j -
    c_k)`` with ``c_i = g_i ln 2 / ((1 + r_i) ln^2(1 + r_i)) / IDCG``: ``sigma'`` is resolved
    relatively to an ulp of ``4 + (|s_j| + |s_k|) / T`` and ``c_i`` to ``4 + 2 R_i`` (its
    logarithmic derivative in ``r`` is below 2): ``(1/T) sum_j sigma'_jk [(|c_j| + |c_k|)
    (4 + (|s_j| + |s_k|) / T) + 2 |c_j| R_j + 2 |c_k| R_k]``.
    """
    where = np.asarray(where, bool)
    t = float(temperature)
    scores = np.where(where, scores, 0.0).astype(np.float64)
    labels = np.where(where, labels, 0.0).astype(np.float64)
    scale = np.abs(scores) if score_scale is None else np.where(where, score_scale, 0.0)
    gains = np.where(where, np.exp2(labels) - 1.0, 0.0)
    n = where.sum(-1)
    discount = 1.0 / np.log2(np.arange(scores.shape[-1]) + 2.0)
    ideal = (-np.sort(-gains, axis=-1) * discount).sum(-1)
    pair = where[..., None, :] & where[..., :, None]  # [..., i, j], both valid
    p = 1.0 / (1.0 + np.exp(-(scores[..., None, :] - scores[..., :, None]) / t))
    others = pair & ~np.eye(scores.shape[-1], dtype=bool)
    ranks = 1.0 + np.where(others, p, 0.0).sum(-1)
    spread = (scale[..., :, None] + scale[..., None, :]) / t
    big_r = 1.0 + ranks + np.where(pair, spread / 4.0, 0.0).sum(-1)
    counted = ideal > 0
    safe_ideal = np.where(counted, ideal, 1.0)[..., None]
    weight = np.where(counted[..., None], gains / safe_ideal, 0.0)
    dcg_ratio = (weight / np.log2(1.0 + ranks)).sum(-1)
    value = np.where(counted, 1.0 + (weight * (2.0 + big_r)).sum(-1) + np.log2(n + 1.0) * dcg_ratio, 0.0)
    c = weight * np.log(2.0) / ((1.0 + ranks) * np.log1p(ranks) ** 2)
    slope = np.where(pair, p * (1.0 - p), 0.0)  # sigma'_jk, [..., k, j]
    c_j, c_k = c[..., None, :], c[..., :, None]
    r_j, r_k = big_r[..., None, :], big_r[..., :, None]
    terms = slope * ((c_j + c_k) * (4.0 + spread) + 2.0 * c_j * r_j + 2.0 * c_k * r_k)
    grad = np.where(where, terms.sum(-1) / t, 0.0)
    return value, grad, int(counted.sum())


def _lambda_weights(weighting, mu, normalize, scores, labels, where):
    """What LambdaLoss's weights [..., L, L] are computed from, in float64 (``lambda_loss``'s
    definition): ``(scale (2^{y_i} + 2^{y_j}), discount factor)`` — each gain ``scale (2^y - 1)``
    is resolved to an ulp of ``scale 2^y`` —; for "label_diff" ``(|y_i| + |y_j|, 1)``."""
    pair_sum = np.abs(labels)[..., :, None] + np.abs(labels)[..., None, :]
    if weighting == "label_diff":
        return pair_sum, np.ones_like(pair_sum)
    gains = np.where(where, np.exp2(labels) - 1.0, 0.0)
    scale = where.sum(-1, keepdims=True).astype(np.float64)
    if normalize:
        discount = 1.0 / np.log2(np.arange(scores.shape[-1]) + 2.0)
        ideal = (-np.sort(-gains, axis=-1) * discount).sum(-1, keepdims=True)
        scale = scale / np.where(ideal > 0, ideal, 1.0)
    # exp2(y) - 1 is resolved to an ulp of 2^y, not of the gain (labels in (0, 1)).
    resolved = np.where(where, np.exp2(labels), 0.0) * scale
    order = np.argsort(np.where(where, -scores, np.inf), axis=-1, kind="stable")
    ranks = np.zeros(scores.shape)
    np.put_along_axis(ranks, order, np.arange(1.0, scores.shape[-1] + 1.0), -1)
    d = 1.0 / np.log2(1.0 + ranks)
    gap = np.maximum(np.abs(ranks[..., :, None] - ranks[..., None, :]), 1.0)
    rho = np.abs(d[..., :, None] - d[..., None, :])
    delta = 1.0 / np.log2(gap + 1.0) - 1.0 / np.log2(gap + 2.0)
    factor = {"dcg": rho, "ndcg_loss2": delta, "ndcg_loss2++": rho + mu * delta}[weighting]
    return resolved[..., :, None] + resolved[..., None, :], factor


def lambdaloss(scores, labels, where, *, weighting="ndcg_loss2++", mu=10.0, normalize=True, score_scale=None):
    """Per-list value magnitudes [B], per-item gradient magnitudes [B, L] and the pair count.

    A counted pair adds ``lambda_ij softplus(s_j - s_i)``. The weight is computed from gains
    (one ``exp2`` each, a scale ``n / IDCG`` whose sum rounds ``log2 n`` times) and a discount
    factor written without cancellation (``log1p`` of a positive argument, two discounts, a
    product and a quotient: about 7 roundings), and ``|G_i - G_j|`` is resolved to an ulp of
    the gains' size ``scale (2^{y_i} + 2^{y_j})``: ``W_ij = (8 + log2 n) scale (2^{y_i} +
    2^{y_j}) factor_ij`` (labels: ``|y_i| + |y_j|``). Value ``W_ij (softplus + 1 + |s_i| +
    |s_j|)`` per pair (the margin's rounding as in ``pairwise``); gradient ``W_ij sigma(-margin)
    (3 + |s_i| + |s_j|)`` on both items. With ``score_scale`` (scores that carry rounding of
    their own) two items whose scores lie within ``ULPS`` ulps of their scales may swap ranks
    between the frameworks:
    every pair with such an item may then move by up to its gains' size times the largest
    factor — 1 for "dcg" (``|d(r) - d(r')| < 1``), 0.37 for "ndcg_loss2" (``d(k) - d(k + 1) <=
    1 - 1 / log2 3``), ``1 + 0.37 mu`` for both — which counts as that change over ``ULPS eps``.
    """
    where = np.asarray(where, bool)
    scores = np.where(where, scores, 0.0).astype(np.float64)
    labels = np.where(where, labels, 0.0).astype(np.float64)
    scale = np.abs(scores) if score_scale is None else np.where(where, score_scale, 0.0)
    pair_sum, factor = _lambda_weights(weighting, mu, normalize, scores, labels, where)
    size = pair_sum * factor
    if weighting != "label_diff":
        size = size * (8.0 + np.log2(np.maximum(where.sum(-1), 1)))[..., None, None]
        if score_scale is not None:
            eps = float(np.finfo(np.float32).eps)
            both = where[..., :, None] & where[..., None, :] & ~np.eye(scores.shape[-1], dtype=bool)
            gap = np.abs(scores[..., :, None] - scores[..., None, :])
            close = both & (gap <= ULPS * eps * (scale[..., :, None] + scale[..., None, :]))
            unsettled = close.any(-1)
            moved = unsettled[..., :, None] | unsettled[..., None, :]
            largest = {"dcg": 1.0, "ndcg_loss2": 0.37, "ndcg_loss2++": 1.0 + 0.37 * mu}[weighting]
            size = size + np.where(moved, pair_sum * largest / (ULPS * eps), 0.0)
    counted = where[..., :, None] & where[..., None, :] & (labels[..., :, None] > labels[..., None, :])
    margin = scores[..., :, None] - scores[..., None, :]  # winner i minus loser j
    spread = 1.0 + scale[..., :, None] + scale[..., None, :]
    value = np.where(counted, size * (np.logaddexp(-margin, 0.0) + spread), 0.0).sum((-2, -1))
    pull = np.where(counted, size * (2.0 + spread) / (1.0 + np.exp(np.clip(margin, -700, 700))), 0.0)
    grad = pull.sum(-1) + pull.sum(-2)
    return value, grad, int(counted.sum())


def metric(scores, labels, where):
    """Per-list value magnitudes [B] of a ranking metric (all lie in [0, 1]) and the count.

    NDCG and average precision divide sums of at most ``n`` positive terms each of at most 1
    (exp2, log2, a division: a few roundings each); MRR and recall one quotient: ``2 +
    log2(n)`` bounds them all, ``n`` the list's valid items.
    """
    valid = np.asarray(where, bool).sum(-1)
    return 2.0 + np.log2(np.maximum(valid, 1)), None, (valid > 0).sum()


def reduce(magnitude, cotangent, reduction: str):
    """Apply a reduction to ``(value [B], grad [B, L] | None, count)`` magnitudes.

    "none": values as they are, gradients scaled by ``|cotangent|`` per list; "sum": the
    values add up (so do their magnitudes); "mean": divided by the count (at least 1).
    """
    value, grad, count = magnitude
    if reduction == "none":
        return value, None if grad is None else grad * np.abs(cotangent)[..., None]
    scale = 1.0 if reduction == "sum" else 1.0 / max(int(count), 1)
    return value.sum() * scale, None if grad is None else grad * scale


def loss_parts(
    function: str, scores, labels, where, *, tie_break=None, pairs=None, score_scale=None, options=None
):
    """``(value [B], gradient [B, L], count)`` magnitudes of a registered loss function, before
    its reduction; ``score_scale`` as in ``listmle``, ``options`` the call's other keyword
    arguments (``k``, ``weights``, ``threshold``). A loss function missing here has no
    bound: add one with the loss."""
    options = options or {}
    length = np.shape(scores)[-1]
    if function == "listmle_loss":
        return listmle(scores, labels, where, tie_break, score_scale=score_scale)
    if function == "topk_listmle_loss":
        weights = top_k_weights(options.get("k", 10), length)
        return listmle(scores, labels, where, tie_break, score_scale=score_scale, weights=weights)
    if function == "position_listmle_loss":
        weights = position_weights(options.get("weights", "dcg"), length)
        return listmle(scores, labels, where, tie_break, score_scale=score_scale, weights=weights)
    if function == "softmax_loss":
        return softmax(scores, labels, where, score_scale=score_scale)
    if function == "sigmoid_cross_entropy_loss":
        return sigmoid(scores, labels, where, score_scale=score_scale)
    if function == "approx_ndcg_loss":
        temperature = options.get("temperature", 1.0)
        return approx_ndcg(scores, labels, where, temperature=temperature, score_scale=score_scale)
    if function == "lambda_loss":
        lambda_options = {k: options[k] for k in ("weighting", "mu", "normalize") if k in options}
        return lambdaloss(scores, labels, where, score_scale=score_scale, **lambda_options)
    if function == "pairwise_pl_loss":
        return pairwise(scores, labels, where, pairs, score_scale=score_scale)
    if function == "pointwise_mse_loss":
        return pointwise(scores, labels, where, score_scale=score_scale)
    raise KeyError(f"{function}: no rounding bound in parity_tests/_bounds.py")


def loss_magnitude(function: str, scores, labels, where, cotangent, reduction: str, **options):
    """The reduced ``(value, gradient)`` magnitudes of a registered loss function's call.

    ``options``: ``tie_break`` and ``pairs`` as passed (None: position order, all pairs) and,
    for a combination (``Loss.parts``), its ``alpha``.
    """
    spec = next(loss for loss in LOSSES.values() if loss.function == function)
    if spec.parts:
        weights = (options["alpha"], 1.0 - options["alpha"])
        total = None
        for part, weight in zip(spec.parts, weights, strict=True):
            part_spec = LOSSES[part]
            part_options = {
                "tie_break": options.get("tie_break") if part_spec.random_order else None,
                "pairs": options.get("pairs") if part_spec.takes_pairs else None,
            }
            reduced = loss_magnitude(
                part_spec.function, scores, labels, where, cotangent, reduction, **part_options
            )
            scaled = tuple(weight * m for m in reduced)
            total = scaled if total is None else tuple(a + b for a, b in zip(total, scaled, strict=True))
        return total
    options.pop("alpha", None)
    parts = loss_parts(
        function,
        scores,
        labels,
        where,
        tie_break=options.pop("tie_break", None),
        pairs=options.pop("pairs", None),
        options=options,
    )
    return reduce(parts, cotangent, reduction)
