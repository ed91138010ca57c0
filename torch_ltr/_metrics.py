"""Ranking metrics in PyTorch: NDCG@k, MRR, average precision, recall@k (see ``jax_ltr``)."""

from __future__ import annotations

import sys

import torch

from ltr_common import checks
from ltr_common.checks import GAIN_LABEL_MAX, check_k, check_reduction
from ltr_common.evaluation import ranking_metric_set
from torch_ltr._label_order import take
from torch_ltr._utils import array_info, as_option, as_tensor, check_inputs, check_label_range, safe_reduce


def _ranked(scores, labels, where):
    """Labels and validity in the order of descending scores, ties by position, every valid
    item before every invalid one whatever its score (a NaN after every number, as the JAX
    side's integer keys put it): a stable sort by score, then by validity. One sort by
    ``descending_order``'s key would tie a valid -inf score with the invalid items' +inf and
    put a valid NaN after them."""
    by_score = torch.argsort(-scores + 0.0, dim=-1, stable=True)  # NaN last; -0.0 and +0.0 tie
    order = take(by_score, torch.argsort((~take(where, by_score)).to(torch.uint8), dim=-1, stable=True))
    return take(labels, order), take(where, order)


def _top_k(length: int, k: int | None, dtype, device):
    return (torch.arange(length, device=device) < (length if k is None else k)).to(dtype)


def _prepare(scores, labels, where, reduction, k=None):
    check_reduction(reduction)
    check_k(k)
    return check_inputs(scores, labels, where)[:3]


def _finish(per_list, where, reduction):
    return safe_reduce(per_list, where.any(-1), reduction)


def ndcg_at_k(scores, labels, *, where=None, k: int | None = None, reduction: str = "mean"):
    """NDCG@k: gain ``2^y - 1``, discount ``1 / log2(rank + 1)``, ideal from the labels; 0 if ideal 0.
    Labels must lie in [0, 64] (``ltr_common.checks.GAIN_LABEL_MAX``), else ``ValueError``.

    Example:
      >>> import torch
      >>> ndcg_at_k(torch.tensor([2.0, 1.0]), torch.tensor([1.0, 0.0])).item()
      1.0
    """
    scores, labels, where = _prepare(scores, labels, where, reduction, k)
    check_label_range(labels, where, high=GAIN_LABEL_MAX)
    length = scores.shape[-1]
    positions = torch.arange(length, dtype=scores.dtype, device=scores.device)
    discount = _top_k(length, k, scores.dtype, scores.device) / torch.log2(positions + 2.0)

    def dcg(ranked_labels, ranked_valid):
        gains = torch.where(ranked_valid, torch.exp2(ranked_labels) - 1.0, 0.0)
        return (gains * discount).sum(-1)

    actual = dcg(*_ranked(scores, labels, where))
    ideal = dcg(*_ranked(labels, labels, where))
    per_list = torch.where(ideal > 0, actual / torch.where(ideal > 0, ideal, 1.0), 0.0)
    return _finish(per_list, where, reduction)


def _relevant_ranked(scores, labels, where, relevance_threshold):
    ranked_labels, ranked_valid = _ranked(scores, labels, where)
    return ranked_valid & (ranked_labels >= relevance_threshold)


def mrr(scores, labels, *, where=None, relevance_threshold: float = 4.0, reduction: str = "mean"):
    """Mean reciprocal rank of the first item with label >= ``relevance_threshold`` (0 if none).

    Example:
      >>> import torch
      >>> mrr(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1.0, 5.0, 4.0])).item()
      0.5
    """
    relevance_threshold = checks.check_relevance_threshold(as_option(relevance_threshold))
    scores, labels, where = _prepare(scores, labels, where, reduction)
    relevant = _relevant_ranked(scores, labels, where, relevance_threshold)
    # the first relevant item, taken by a sum: argmax is undefined on empty lists
    first = relevant & (relevant.cumsum(-1) == 1)
    ranks = torch.arange(1, scores.shape[-1] + 1, dtype=scores.dtype, device=scores.device)
    per_list = torch.where(first, 1.0 / ranks, 0.0).sum(-1)
    return _finish(per_list, where, reduction)


def average_precision(
    scores, labels, *, where=None, relevance_threshold: float = 4.0, reduction: str = "mean"
):
    """Average precision over the relevant items' ranks; 0 with no relevant item.

    Example:
      >>> import torch
      >>> round(average_precision(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1.0, 5.0, 4.0])).item(), 4)
      0.5833
    """
    relevance_threshold = checks.check_relevance_threshold(as_option(relevance_threshold))
    scores, labels, where = _prepare(scores, labels, where, reduction)
    relevant = _relevant_ranked(scores, labels, where, relevance_threshold).to(scores.dtype)
    ranks = torch.arange(1, scores.shape[-1] + 1, dtype=scores.dtype, device=scores.device)
    precision = relevant.cumsum(-1) / ranks
    per_list = (precision * relevant).sum(-1) / relevant.sum(-1).clamp(min=1.0)
    return _finish(per_list, where, reduction)


def recall_at_k(
    scores,
    labels,
    *,
    where=None,
    k: int | None = None,
    relevance_threshold: float = 4.0,
    reduction: str = "mean",
):
    """Share of the relevant items ranked in the top ``k``; 0 with no relevant item.

    Example:
      >>> import torch
      >>> recall_at_k(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1.0, 5.0, 4.0]), k=2).item()
      0.5
    """
    relevance_threshold = checks.check_relevance_threshold(as_option(relevance_threshold))
    scores, labels, where = _prepare(scores, labels, where, reduction, k)
    relevant = _relevant_ranked(scores, labels, where, relevance_threshold).to(scores.dtype)
    hits = (relevant * _top_k(scores.shape[-1], k, scores.dtype, scores.device)).sum(-1)
    per_list = hits / relevant.sum(-1).clamp(min=1.0)
    return _finish(per_list, where, reduction)


def ranking_metrics(
    scores, labels, *, where=None, top_k=(5, 10, 20), recall_k=(10,), relevance_threshold: float = 4.0
) -> dict:
    """The evaluation set, per list: ``ndcg@k`` for ``k`` in ``top_k``, ``mrr``, ``map`` and
    ``recall@k`` for ``k`` in ``recall_k`` (``ltr_common.evaluation.ranking_metric_set``).

    Example:
      >>> import torch
      >>> m = ranking_metrics(torch.tensor([[3.0, 2.0, 1.0]]), torch.tensor([[1.0, 5.0, 4.0]]), top_k=(2,))
      >>> {k: round(v[0].item(), 4) for k, v in m.items()}
      {'ndcg@2': 0.5081, 'mrr': 0.5, 'map': 0.5833, 'recall@10': 1.0}
    """
    top_k, recall_k = checks.check_cutoffs(top_k, "top_k"), checks.check_cutoffs(recall_k, "recall_k")
    relevance_threshold = checks.check_relevance_threshold(as_option(relevance_threshold))
    return ranking_metric_set(
        sys.modules[__name__],
        scores,
        labels,
        where=where,
        top_k=top_k,
        recall_k=recall_k,
        relevance_threshold=relevance_threshold,
    )


def retrieval_metrics(scores, relevant, *, exclude=None, ks=(10, 20)) -> dict:
    """Full-catalog retrieval metrics per user (see ``jax_ltr.retrieval_metrics``).

    Example:
      >>> import torch
      >>> m = retrieval_metrics(torch.tensor([[0.1, 0.9, 0.5]]), torch.tensor([[True, False, False]]),
      ...                       exclude=torch.tensor([[False, True, False]]), ks=(1, 2))
      >>> {k: round(v[0].item(), 6) for k, v in m.items()}
      {'recall@1': 0.0, 'ndcg@1': 0.0, 'hr@1': 0.0, 'recall@2': 1.0, 'ndcg@2': 0.63093, 'hr@2': 1.0}
    """
    scores, relevant = as_tensor(scores, "scores"), as_tensor(relevant, "relevant")
    exclude = None if exclude is None else as_tensor(exclude, "exclude")
    checks.check_retrieval(*(None if x is None else array_info(x) for x in (scores, relevant, exclude)), ks)
    dtype = torch.promote_types(scores.dtype, torch.float32)
    ranked = scores.to(dtype)
    # a NaN score ranks with the lowest (-inf), as in JAX: both at the lowest finite number,
    # so that excluded items, at -inf, come after every one
    lowest = torch.isnan(ranked) | (ranked == -torch.inf)
    if exclude is not None:
        lowest = lowest & ~exclude
    ranked = torch.where(lowest, torch.finfo(dtype).min, ranked)
    if exclude is not None:
        ranked = torch.where(exclude, -torch.inf, ranked)
    depth = min(max(ks), scores.shape[-1])
    top = torch.sort(ranked, dim=-1, descending=True, stable=True).indices[:, :depth]  # ties: lower index
    # an excluded item fills a place of the top k only where fewer than k are left: no hit
    found_here = relevant if exclude is None else relevant & ~exclude
    hits = found_here.gather(-1, top).to(dtype)
    count = relevant.sum(-1).to(dtype)
    discount = 1.0 / torch.log2(torch.arange(2, depth + 2, dtype=dtype, device=scores.device))
    ideal = torch.cat([discount.new_zeros(1), discount.cumsum(0)])
    none = count == 0
    safe = torch.where(none, 1.0, count)
    out = {}
    for k in ks:
        found = hits[:, :k].sum(-1)
        best = ideal[torch.clamp(count, max=min(k, depth)).long()]
        out[f"recall@{k}"] = torch.where(none, torch.nan, found / safe)
        out[f"ndcg@{k}"] = torch.where(
            none, torch.nan, (hits[:, :k] * discount[:k]).sum(-1) / torch.where(none, 1.0, best)
        )
        out[f"hr@{k}"] = torch.where(none, torch.nan, (found > 0).to(dtype))
    return out
