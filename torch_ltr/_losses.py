"""Ranking losses in PyTorch, the reference for ``jax_ltr``'s: the same functions, same names.

Same contract as ``jax_ltr``: ``[..., L]`` scores and labels (last axis = list), ``where``
bool mask (True = valid; invalid items are ignored entirely, NaN included), ``reduction``
"none" | "sum" | "mean".
"""

from __future__ import annotations

import math

import torch

from ltr_common import checks
from ltr_common.checks import GAIN_LABEL_MAX, check_levels, check_reduction
from ltr_common.losses import mix, position_weights, top_k_weights
from torch_ltr._label_order import descending_order, take
from torch_ltr._utils import array_info, as_option, as_tensor, check_inputs, check_label_range, safe_reduce


def suffix_logsumexp(x: torch.Tensor, *, where: torch.Tensor | None = None) -> torch.Tensor:
    """``out[..., i] = log sum_{j >= i, where[..., j]} exp(x[..., j])``; -inf for an empty set.

    Args:
      x: [..., L] float tensor.
      where: [..., L] bool tensor or None (all valid).

    Example:
      >>> import torch
      >>> [round(v, 4) for v in suffix_logsumexp(torch.log(torch.tensor([1.0, 2.0, 3.0]))).tolist()]
      [1.7918, 1.6094, 1.0986]
    """
    x = as_tensor(x, "x")
    where = None if where is None else as_tensor(where, "where", device=x.device)
    checks.check_suffix_arrays(array_info(x), None if where is None else array_info(where))
    if where is not None:
        x = torch.where(where, x, -torch.inf)
    return torch.logcumsumexp(x.flip(-1), dim=-1).flip(-1)


def listmle_loss(
    scores, labels, *, where=None, tie_break=None, levels=None, reduction: str = "mean"
) -> torch.Tensor:
    """ListMLE: the Plackett–Luce negative log-likelihood of the label-sorted permutation.

    Per list: ``sum_{valid i} [ log sum_{valid j ranked at or after i} exp(s_j) - s_i ]``, the
    ranking sorting labels descending, ties by ascending ``tie_break``, then position.
    "mean" averages over lists with at least two valid items. ``levels``: the values valid
    labels may take; one outside them is a ``ValueError`` (the order is the same either way).

    Example:
      >>> import torch
      >>> round(listmle_loss(torch.zeros(2), torch.tensor([1.0, 0.0])).item(), 6)  # log 2
      0.693147
    """
    return _listmle(scores, labels, where, tie_break, levels, reduction, weights=None)


def _listmle(scores, labels, where, tie_break, levels, reduction, *, weights):
    """ListMLE with the places of the label order weighted by ``weights`` ([L] float64 NumPy;
    None: all 1): ``listmle_loss`` and its top-k and position-aware forms."""
    check_reduction(reduction)
    out_dtype = as_tensor(scores, "scores").dtype
    levels = check_levels(levels)
    scores, labels, where, tie_break = check_inputs(scores, labels, where, tie_break)
    if levels is not None:
        known = torch.tensor(levels, dtype=labels.dtype, device=labels.device)
        outside = where & ~(labels[..., None] == known).any(-1)
        if outside.any():  # found on the device; only the first such label comes to the host
            index = tuple(int(i) for i in outside.nonzero()[0])
            raise checks.outside_levels_error(levels, labels[index].item(), index)
    order = descending_order(labels, where, tie_break)
    valid = take(where, order)
    ranked = take(torch.where(where, scores, 0.0), order)
    suffix = suffix_logsumexp(ranked, where=valid)
    terms = torch.where(valid, suffix - ranked, 0.0)
    if weights is not None:
        terms = terms * torch.as_tensor(weights, dtype=terms.dtype, device=terms.device)
    per_list = terms.sum(-1)
    counted = valid.sum(-1) >= 2
    return safe_reduce(per_list, counted, reduction).to(out_dtype)


def _pair_terms(margin: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """-log sigma(margin) = softplus(-margin) as logaddexp (no threshold), where counted."""
    return torch.where(counted, torch.logaddexp(-margin, torch.zeros_like(margin)), 0.0)


def pairwise_pl_loss(scores, labels, *, where=None, pairs=None, reduction: str = "mean") -> torch.Tensor:
    """Pairwise Plackett–Luce: ``-log sigma(s_i - s_j)`` for valid pairs with ``y_i > y_j``.

    ``pairs=None`` takes every such pair; ``pairs=(list_index, i_index, j_index)`` takes
    exactly those (either orientation; invalid or equal-label pairs count as nothing).
    "none" gives per-list sums, "mean" averages over counted pairs.

    Example:
      >>> import torch
      >>> round(pairwise_pl_loss(torch.tensor([0.0, 0.0]), torch.tensor([2.0, 1.0])).item(), 6)
      0.693147
    """
    check_reduction(reduction)
    out_dtype = as_tensor(scores, "scores").dtype
    scores, labels, where, _ = check_inputs(scores, labels, where)
    scores = torch.where(where, scores, 0.0)
    labels = torch.where(where, labels, 0.0)
    batch_shape = scores.shape[:-1]
    if pairs is None:
        counted = where[..., :, None] & where[..., None, :] & (labels[..., :, None] > labels[..., None, :])
        terms = _pair_terms(scores[..., :, None] - scores[..., None, :], counted)
        per_list, count = terms.sum((-2, -1)), counted.sum()
    else:
        list_index, i_index, j_index = _check_pairs(pairs, scores.shape, scores.device)
        length = scores.shape[-1]
        flat_s, flat_y, flat_w = (t.reshape(-1, length) for t in (scores, labels, where))
        y_i, y_j = flat_y[list_index, i_index], flat_y[list_index, j_index]
        counted = flat_w[list_index, i_index] & flat_w[list_index, j_index] & (y_i != y_j)
        margin = flat_s[list_index, i_index] - flat_s[list_index, j_index]
        terms = _pair_terms(torch.where(y_i > y_j, margin, -margin), counted)
        per_list = torch.zeros(flat_s.shape[0], dtype=terms.dtype, device=terms.device)
        per_list = per_list.index_add(0, list_index, terms).reshape(batch_shape)
        count = counted.sum()
    return safe_reduce(per_list, count, reduction).to(out_dtype)


def _check_pairs(pairs, shape, device):
    infos = None
    if isinstance(pairs, tuple | list) and len(pairs) == 3:
        pairs = tuple(
            as_tensor(p, f"pairs: {name}", device=device)
            for p, name in zip(pairs, checks.PAIR_NAMES, strict=True)
        )
        infos = [array_info(p) for p in pairs]
    checks.check_pairs(pairs, infos, shape)
    checks.check_pair_ranges([(int(p.min()), int(p.max())) if p.numel() else None for p in pairs], shape)
    return tuple(p.long() for p in pairs)


def hybrid_loss(
    scores,
    labels,
    *,
    alpha: float = 0.7,
    where=None,
    tie_break=None,
    levels=None,
    pairs=None,
    reduction: str = "mean",
) -> torch.Tensor:
    """``alpha * listmle_loss + (1 - alpha) * pairwise_pl_loss``, each reduced by ``reduction``.

    Example:
      >>> import torch
      >>> round(hybrid_loss(torch.zeros(2), torch.tensor([1.0, 0.0]), alpha=0.5).item(), 6)
      0.693147
    """
    alpha = checks.check_weight(as_option(alpha), "alpha")
    if pairs is not None:  # refused before anything is computed, as every other argument
        checked = as_tensor(scores, "scores")
        _check_pairs(pairs, tuple(checked.shape), checked.device)
    listwise = listmle_loss(
        scores, labels, where=where, tie_break=tie_break, levels=levels, reduction=reduction
    )
    pairwise = pairwise_pl_loss(scores, labels, where=where, pairs=pairs, reduction=reduction)
    return mix(alpha, listwise, pairwise)


def topk_listmle_loss(
    scores, labels, *, k: int | None = 10, where=None, tie_break=None, levels=None, reduction: str = "mean"
) -> torch.Tensor:
    """Top-k ListMLE: the likelihood of the first ``k`` places of the label order only.

    Example:
      >>> import torch
      >>> round(topk_listmle_loss(torch.zeros(3), torch.tensor([2.0, 1.0, 0.0]), k=1).item(), 6)
      1.098612
    """
    check_reduction(reduction)  # refused in the same order as jax_ltr's
    scores = as_tensor(scores, "scores")
    length = scores.shape[-1] if scores.ndim else 0
    weights = top_k_weights(k, length)
    return _listmle(scores, labels, where, tie_break, levels, reduction, weights=weights)


def position_listmle_loss(
    scores, labels, *, weights="dcg", where=None, tie_break=None, levels=None, reduction: str = "mean"
) -> torch.Tensor:
    """Position-aware ListMLE: place ``p``'s term weighted by ``weights`` ("dcg": ``1 / log2(p + 2)``).

    Example:
      >>> import torch
      >>> round(position_listmle_loss(torch.zeros(2), torch.tensor([1.0, 0.0]), weights=[2.0]).item(), 6)
      1.386294
    """
    check_reduction(reduction)  # refused in the same order as jax_ltr's
    scores = as_tensor(scores, "scores")
    length = scores.shape[-1] if scores.ndim else 0
    place = position_weights(weights, length)
    return _listmle(scores, labels, where, tie_break, levels, reduction, weights=place)


def softmax_loss(scores, labels, *, where=None, reduction: str = "mean") -> torch.Tensor:
    """Softmax cross-entropy (ListNet top-one): ``-sum_i p_i log softmax(s)_i``, ``p = y / sum(y)``;
    a list whose labels sum to 0 contributes 0 and is not counted by "mean". Any finite labels
    >= 0, up to float32's largest number: ``p`` is found as in ``jax_ltr``.

    Example:
      >>> import torch
      >>> round(softmax_loss(torch.zeros(2), torch.tensor([1.0, 0.0])).item(), 6)
      0.693147
    """
    check_reduction(reduction)
    out_dtype = as_tensor(scores, "scores").dtype
    scores, labels, where, _ = check_inputs(scores, labels, where)
    check_label_range(labels, where)
    labels = torch.where(where, labels, 0.0)
    # scaled by a power of two (exact) as in jax_ltr: the sum stays finite, its reciprocal normal
    labels = labels * torch.where((labels > 2.0**64).any(-1, keepdim=True), 2.0**-64, 1.0)
    total = labels.sum(-1, keepdim=True)
    counted = total[..., 0] > 0
    target = labels / torch.where(total > 0, total, 1.0)
    # Masked items at the lowest finite score: exp() of them is 0, and an empty list stays finite.
    log_softmax = torch.log_softmax(torch.where(where, scores, torch.finfo(scores.dtype).min), dim=-1)
    per_list = -torch.where(where, target * log_softmax, 0.0).sum(-1)
    per_list = torch.where(counted, per_list, 0.0)
    return safe_reduce(per_list, counted, reduction).to(out_dtype)


def sigmoid_cross_entropy_loss(
    scores, labels, *, where=None, threshold=None, reduction: str = "mean"
) -> torch.Tensor:
    """Pointwise sigmoid cross-entropy ``softplus(s) - t s`` per valid item, summed per list;
    ``t`` = the label (in [0, 1]) or, with ``threshold``, ``label >= threshold``.

    Example:
      >>> import torch
      >>> round(sigmoid_cross_entropy_loss(torch.zeros(2), torch.tensor([1.0, 0.0])).item(), 6)
      0.693147
    """
    check_reduction(reduction)
    threshold = checks.check_threshold(as_option(threshold))
    out_dtype = as_tensor(scores, "scores").dtype
    scores, labels, where, _ = check_inputs(scores, labels, where)
    if threshold is None:
        check_label_range(labels, where, high=1.0)
    labels = torch.where(where, labels, 0.0)
    target = labels if threshold is None else (labels >= threshold).to(scores.dtype)
    # The fused kernel, fastest by far: NaN for a -inf logit, and for +inf with target 1
    # (jax_ltr: 0 where the target agrees, +inf where it does not; set apart there for free).
    terms = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.where(where, scores, 0.0), target, reduction="none"
    )
    return safe_reduce(torch.where(where, terms, 0.0).sum(-1), where, reduction).to(out_dtype)


def approx_ndcg_loss(
    scores, labels, *, where=None, temperature: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """ApproxNDCG: ``1 - sum_i (2^{y_i} - 1) / log2(1 + r_i) / IDCG`` with the smooth rank
    ``r_i = 1 + sum_{valid j != i} sigma((s_j - s_i) / temperature)``; a list with IDCG 0
    contributes 0 and is not counted. Labels in [0, 64], ``temperature`` with a normal float32
    reciprocal, the differences scaled by it (see ``jax_ltr``). The reference: dense [B, L, L]
    smooth ranks.

    Example:
      >>> import torch
      >>> round(approx_ndcg_loss(torch.tensor([-1.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])).item(), 6)
      0.36907
    """
    check_reduction(reduction)
    inverse_temperature = checks.check_temperature(as_option(temperature))
    out_dtype = as_tensor(scores, "scores").dtype
    scores, labels, where, _ = check_inputs(scores, labels, where)
    check_label_range(labels, where, high=GAIN_LABEL_MAX)
    labels = torch.where(where, labels, 0.0)
    gains = torch.where(where, torch.exp2(labels) - 1.0, 0.0)
    s = torch.where(where, scores, 0.0)
    length = s.shape[-1]
    others = where[..., None, :] & ~torch.eye(length, dtype=torch.bool, device=s.device)
    pair = torch.sigmoid((s[..., None, :] - s[..., :, None]) * inverse_temperature)  # [..., i, j]
    ranks = 1.0 + torch.where(others, pair, 0.0).sum(-1)
    dcg = torch.where(where, gains / torch.log2(1.0 + ranks), 0.0).sum(-1)
    ideal = _ideal_dcg(gains, labels, where)
    counted = ideal > 0
    per_list = torch.where(counted, 1.0 - dcg / torch.where(counted, ideal, 1.0), 0.0)
    return safe_reduce(per_list, counted, reduction).to(out_dtype)


def _pair_weight(weighting: str, mu: float, gains, ranks):
    """LambdaLoss's ``lambda_ij`` [..., L, L] from scaled gains and 1-based ranks, the discount
    gaps written without cancellation and symmetrically in ``i, j``, as in ``jax_ltr``."""
    gain_gap = (gains[..., :, None] - gains[..., None, :]).abs()
    rank_i, rank_j = ranks[..., :, None], ranks[..., None, :]
    rank_gap = (rank_i - rank_j).abs()
    discount = 1.0 / torch.log2(1.0 + ranks)
    parts = []
    if weighting in ("dcg", "ndcg_loss2++"):
        ratio = torch.log1p(rank_gap / (1.0 + torch.minimum(rank_i, rank_j)))
        parts.append(ratio * discount[..., :, None] * discount[..., None, :] / math.log(2.0))
    if weighting in ("ndcg_loss2", "ndcg_loss2++"):
        gap = rank_gap.clamp(min=1.0)  # 0 only for i = j, never counted
        logs = torch.log2(gap + 1.0) * torch.log2(gap + 2.0)
        delta = torch.log1p(1.0 / (gap + 1.0)) / (math.log(2.0) * logs)
        parts.append(delta if weighting == "ndcg_loss2" else mu * delta)
    return gain_gap * (parts[0] if len(parts) == 1 else parts[0] + parts[1])


def _ideal_dcg(gains: torch.Tensor, labels: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Each list's DCG in its label order (the best possible): ``sum_p g_(p) / log2(p + 2)``.
    The label order puts ties by position and invalid items last, so that a label's gradient
    goes to its own place, never to a masked item's of the same gain."""
    places = torch.arange(gains.shape[-1], dtype=gains.dtype, device=gains.device)
    return (take(gains, descending_order(labels.detach(), where)) / torch.log2(places + 2.0)).sum(-1)


def lambda_loss(
    scores,
    labels,
    *,
    where=None,
    weighting: str = "ndcg_loss2++",
    mu: float = 10.0,
    normalize: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """LambdaLoss: ``sum_{valid i, j: y_i > y_j} lambda_ij softplus(s_j - s_i)`` per list, the
    weights from the scores' ranks (ties by position) and the gains ``n (2^y - 1) / IDCG``
    ("ndcg_loss2++", "ndcg_loss2", "dcg"; labels in [0, 64]) or ``|y_i - y_j|`` ("label_diff");
    "mean" over valid pairs with different labels. Autograd differentiates the labels too,
    through the weights' gains or label gaps, as ``jax_ltr``'s custom VJP does. The
    reference: dense [B, L, L] pairs.

    Example:
      >>> import torch
      >>> scores, labels = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([2.0, 1.0, 0.0])
      >>> round(lambda_loss(scores, labels, weighting="label_diff", reduction="sum").item(), 4)
      6.8804
    """
    check_reduction(reduction)
    mu = checks.check_lambda_options(weighting, as_option(mu), normalize)
    out_dtype = as_tensor(scores, "scores").dtype
    scores, labels, where, _ = check_inputs(scores, labels, where)
    gain_based = weighting != "label_diff"
    if gain_based:
        check_label_range(labels, where, high=GAIN_LABEL_MAX)
    s = torch.where(where, scores, 0.0)
    labels = torch.where(where, labels, 0.0)
    counted = where[..., :, None] & where[..., None, :] & (labels[..., :, None] > labels[..., None, :])
    terms = _pair_terms(s[..., :, None] - s[..., None, :], counted)  # [..., winner i, loser j]
    if gain_based:
        gains = torch.where(where, torch.exp2(labels) - 1.0, 0.0)
        scale = where.sum(-1, keepdim=True).to(s.dtype)
        if normalize:
            ideal = _ideal_dcg(gains, labels, where)[..., None]
            scale = scale / torch.where(ideal > 0, ideal, 1.0)
        order = descending_order(s.detach(), where)
        places = torch.arange(1, s.shape[-1] + 1, dtype=s.dtype, device=s.device).expand_as(s)
        ranks = torch.zeros_like(s).scatter(-1, order, places)
        weight = _pair_weight(weighting, float(mu), gains * scale, ranks)
    else:
        weight = (labels[..., :, None] - labels[..., None, :]).abs()
    per_list = torch.where(counted, weight * terms, 0.0).sum((-2, -1))
    return safe_reduce(per_list, counted.sum(), reduction).to(out_dtype)


def pointwise_mse_loss(scores, labels, *, where=None, reduction: str = "mean") -> torch.Tensor:
    """Pointwise squared error: ``sum_{valid i} (s_i - y_i)^2`` per list; "mean" over valid items.

    Example:
      >>> import torch
      >>> pointwise_mse_loss(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0])).item()
      2.0
    """
    check_reduction(reduction)
    out_dtype = as_tensor(scores, "scores").dtype
    scores, labels, where, _ = check_inputs(scores, labels, where)
    error = torch.where(where, scores - torch.where(where, labels, 0.0), 0.0)
    return safe_reduce((error * error).sum(-1), where, reduction).to(out_dtype)
