"""Independent float64 references in plain Python, one list at a time: no JAX, no PyTorch.

Two kinds: brute force straight from a definition (the Plackett–Luce probability as an explicit
product, every pair, every rank), for small lists; and numerically safe closed forms (log-sum-
exp with its maximum taken out, ``softplus`` split at 0) with their analytic gradients, which
stay exact for scores of ±1e4 where a product of ``exp`` overflows. ``reference`` applies them
to a padded batch with a mask and a reduction, as the libraries' functions are called.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

RELEVANT = 4.0  # the metrics' default relevance_threshold


def label_order(labels, tie_break=None) -> list[int]:
    """Descending labels, ties by ascending tie_break, then position."""
    ties = tie_break if tie_break is not None else [0.0] * len(labels)
    return sorted(range(len(labels)), key=lambda i: (-labels[i], ties[i], i))


def score_order(scores) -> list[int]:
    """Descending scores, ties by position (how the metrics rank)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def brute_listmle(scores, labels, tie_break=None, weights=None) -> float:
    """-log P(label-sorted permutation) under Plackett–Luce, as an explicit product; with
    ``weights`` (one per place, missing places 0), ``-sum_p w_p log P(place p's choice)``."""
    order = label_order(labels, tie_break)
    total = 0.0
    for position, item in enumerate(order):
        weight = 1.0 if weights is None else (weights[position] if position < len(weights) else 0.0)
        rest = order[position:]
        total -= weight * math.log(math.exp(scores[item]) / sum(math.exp(scores[j]) for j in rest))
    return total


def _logsumexp(values) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def listmle(scores, labels, tie_break=None, weights=None) -> tuple[float, list[float]]:
    """Value and gradient of ListMLE for one list, safe for any finite scores.

    ``c_i = log sum_{j >= i} exp(s_j)`` along the label order; the value is ``sum_i w_i (c_i -
    s_i)`` and ``d/ds_k = sum_{i <= k} w_i exp(s_k - c_i) - w_k`` (every exponent is <= 0);
    ``weights`` one per place (missing places 0), default all 1.
    """
    order = label_order(labels, tie_break)
    w = [1.0 if weights is None else (weights[p] if p < len(weights) else 0.0) for p in range(len(order))]
    ranked = [scores[i] for i in order]
    suffix = [_logsumexp(ranked[i:]) for i in range(len(ranked))]
    value = sum(wi * (c - s) for wi, c, s in zip(w, suffix, ranked, strict=True))
    grad = [0.0] * len(scores)
    for k, item in enumerate(order):
        grad[item] = sum(w[i] * math.exp(ranked[k] - suffix[i]) for i in range(k + 1)) - w[k]
    return value, grad


def softmax(scores, labels) -> tuple[float, list[float], int]:
    """ListNet top-one: ``-sum_i p_i log softmax(s)_i``, ``p = y / sum(y)``; its gradient
    ``softmax(s) - p``; whether the list counts (labels summing to more than 0)."""
    total = sum(labels)
    if total <= 0:
        return 0.0, [0.0] * len(scores), 0
    norm = _logsumexp(scores)
    p = [y / total for y in labels]
    value = -sum(pi * (s - norm) for pi, s in zip(p, scores, strict=True))
    return value, [math.exp(s - norm) - pi for pi, s in zip(p, scores, strict=True)], 1


def approx_ndcg(scores, labels, temperature=1.0) -> tuple[float, list[float], int]:
    """ApproxNDCG straight from the definition, its gradient (analytic, term by term) and
    whether the list counts (an ideal DCG above 0)."""
    n = len(scores)
    gains = [2.0**y - 1.0 for y in labels]
    ideal = sum(g / math.log2(p + 2) for p, g in enumerate(sorted(gains, reverse=True)))
    if ideal <= 0:
        return 0.0, [0.0] * n, 0

    def step(x):
        return _sigmoid(x / temperature)

    ranks = [1.0 + sum(step(scores[j] - scores[i]) for j in range(n) if j != i) for i in range(n)]
    value = 1.0 - sum(g / math.log2(1.0 + r) for g, r in zip(gains, ranks, strict=True)) / ideal
    # d value / d r_i, then d r_i / d s_k = sigma'((s_k - s_i) / T) / T (k != i), minus their sum (k = i).
    c = [
        g * math.log(2.0) / ((1.0 + r) * math.log(1.0 + r) ** 2) / ideal
        for g, r in zip(gains, ranks, strict=True)
    ]
    grad = [0.0] * n
    for i in range(n):
        for k in range(n):
            if k != i:
                slope = step(scores[k] - scores[i]) * (1.0 - step(scores[k] - scores[i])) / temperature
                grad[k] += c[i] * slope
                grad[i] -= c[i] * slope
    return value, grad, 1


def sigmoid_cross_entropy(scores, targets) -> tuple[float, list[float]]:
    """``sum_i -t_i log sigma(s_i) - (1 - t_i) log(1 - sigma(s_i))`` and its gradient ``sigma(s) - t``."""
    value = sum(_softplus(s) - t * s for s, t in zip(scores, targets, strict=True))
    return value, [_sigmoid(s) - t for s, t in zip(scores, targets, strict=True)]


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def pairwise(scores, labels, weight=None) -> tuple[float, int, list[float]]:
    """Sum of ``-log sigma(s_i - s_j)`` over pairs with ``y_i > y_j`` (each times ``weight(i,
    j)`` when given), their count, the gradient."""
    value, count, grad = 0.0, 0, [0.0] * len(scores)
    for i, j in itertools.permutations(range(len(scores)), 2):
        if labels[i] > labels[j]:
            w = 1.0 if weight is None else weight(i, j)
            margin = scores[i] - scores[j]
            value += w * _softplus(-margin)
            count += 1
            pull = w * _sigmoid(-margin)  # d softplus(-margin) / d margin = -sigma(-margin)
            grad[i] -= pull
            grad[j] += pull
    return value, count, grad


def lambda_weight(scores, labels, weighting="ndcg_loss2++", mu=10.0, normalize=True):
    """LambdaLoss's ``lambda(i, j)`` for one list, from the definitions (Wang et al., 2018):
    ranks from the scores (ties by position), gains ``n (2^y - 1) / IDCG``, discount ``1 /
    log2(1 + rank)``, NDCG-Loss2's ``|D(|r_i - r_j|) - D(|r_i - r_j| + 1)|``."""
    n = len(scores)
    if weighting == "label_diff":
        return lambda i, j: abs(labels[i] - labels[j])
    rank = {item: place + 1 for place, item in enumerate(score_order(scores))}
    gains = [2.0**y - 1.0 for y in labels]
    ideal = sum(g / math.log2(p + 2) for p, g in enumerate(sorted(gains, reverse=True)))
    scale = n / ideal if normalize and ideal > 0 else float(n)

    def discount(r):
        return 1.0 / math.log2(1.0 + r)

    def weight(i, j):
        gap = abs(rank[i] - rank[j])
        lambdarank = abs(discount(rank[i]) - discount(rank[j]))
        loss2 = abs(discount(gap) - discount(gap + 1))
        factor = {"dcg": lambdarank, "ndcg_loss2": loss2, "ndcg_loss2++": lambdarank + mu * loss2}[weighting]
        return scale * abs(gains[i] - gains[j]) * factor

    return weight


def ndcg(scores, labels, k=None) -> float:
    def dcg(order):
        return sum((2.0 ** labels[i] - 1) / math.log2(r + 2) for r, i in enumerate(order[:k]))

    ideal = dcg(label_order(labels))
    return dcg(score_order(scores)) / ideal if ideal > 0 else 0.0


def mrr(scores, labels) -> float:
    for rank, i in enumerate(score_order(scores), start=1):
        if labels[i] >= RELEVANT:
            return 1.0 / rank
    return 0.0


def average_precision(scores, labels) -> float:
    hits, total = 0, 0.0
    for rank, i in enumerate(score_order(scores), start=1):
        if labels[i] >= RELEVANT:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


def recall(scores, labels, k=None) -> float:
    relevant = [i for i in range(len(labels)) if labels[i] >= RELEVANT]
    top = set(score_order(scores)[:k])
    return len(top & set(relevant)) / len(relevant) if relevant else 0.0


def _per_list(name: str, scores, labels, options: dict):
    """``(value, gradient or None, counts toward the mean)`` for one list of valid items."""
    n = len(scores)
    if name in ("listmle_loss", "topk_listmle_loss", "position_listmle_loss"):
        weights = None
        if name == "topk_listmle_loss":
            k = options.get("k", 10)
            weights = [1.0] * (n if k is None else k)
        elif name == "position_listmle_loss":
            given = options.get("weights", "dcg")
            weights = [1.0 / math.log2(p + 2) for p in range(n)] if given == "dcg" else list(given)
        value, grad = listmle(scores, labels, options.get("tie_break"), weights) if n else (0.0, [])
        return value, grad, int(n >= 2)
    if name == "softmax_loss":
        return softmax(scores, labels)
    if name == "approx_ndcg_loss":
        return approx_ndcg(scores, labels, options.get("temperature", 1.0))
    if name == "sigmoid_cross_entropy_loss":
        threshold = options.get("threshold")
        targets = labels if threshold is None else [float(y >= threshold) for y in labels]
        value, grad = sigmoid_cross_entropy(scores, targets)
        return value, grad, n
    if name == "pairwise_pl_loss":
        value, count, grad = pairwise(scores, labels)
        return value, grad, count
    if name == "lambda_loss":
        value, count, grad = pairwise(scores, labels, lambda_weight(scores, labels, **options))
        return value, grad, count
    if name == "pointwise_mse_loss":
        value = sum((s - y) ** 2 for s, y in zip(scores, labels, strict=True))
        return value, [2.0 * (s - y) for s, y in zip(scores, labels, strict=True)], n
    if name == "hybrid_loss":
        raise ValueError("hybrid_loss: combine the two references")
    metric = {
        "ndcg_at_k": lambda: ndcg(scores, labels, options.get("k")),
        "mrr": lambda: mrr(scores, labels),
        "average_precision": lambda: average_precision(scores, labels),
        "recall_at_k": lambda: recall(scores, labels, options.get("k")),
    }[name]
    return (metric() if n else 0.0), None, int(n > 0)


def reference(name: str, scores, labels, where, *, reduction: str = "none", **options):
    """A library call's expected ``(value, d sum(value) / d scores or None)`` for a [B, L] batch.

    Masked items are dropped before the per-list reference runs; "mean" divides by what the
    libraries count (lists with two valid items for ListMLE, pairs for the pairwise loss,
    lists with a valid item for metrics).
    """
    if name == "hybrid_loss":
        alpha = options.pop("alpha", 0.7)
        parts = [
            reference(n, scores, labels, where, reduction=reduction, **options)
            for n in ("listmle_loss", "pairwise_pl_loss")
        ]
        value = alpha * parts[0][0] + (1 - alpha) * parts[1][0]
        return value, alpha * parts[0][1] + (1 - alpha) * parts[1][1]
    scores, labels, where = (np.asarray(x) for x in (scores, labels, where))
    values, grads, counts = [], np.zeros(scores.shape), []
    for b in range(scores.shape[0]):
        keep = np.flatnonzero(where[b])
        list_options = dict(options)
        if options.get("tie_break") is not None:
            list_options["tie_break"] = [float(t) for t in options["tie_break"][b, keep]]
        value, grad, count = _per_list(
            name, [float(s) for s in scores[b, keep]], [float(y) for y in labels[b, keep]], list_options
        )
        values.append(value)
        counts.append(count)
        if grad is not None:
            grads[b, keep] = grad
    values = np.array(values)
    has_grad = name.endswith("_loss")
    if reduction == "none":
        return values, grads if has_grad else None
    scale = 1.0 if reduction == "sum" else 1.0 / max(sum(counts), 1)
    return values.sum() * scale, grads * scale if has_grad else None


def retrieval(scores, relevant, exclude, ks) -> dict[str, list[float]]:
    """Full-catalog metrics per user, by sorting every user's items one by one (NaN: no
    relevant item). Ties go to the lower item index; excluded items are dropped first."""
    out = {f"{name}@{k}": [] for k in ks for name in ("recall", "ndcg", "hr")}
    for row_scores, row_relevant, row_exclude in zip(scores, relevant, exclude, strict=True):
        candidates = [i for i in range(len(row_scores)) if not row_exclude[i]]
        ranking = sorted(candidates, key=lambda i: (-row_scores[i], i))
        total = int(sum(row_relevant))
        for k in ks:
            hits = [bool(row_relevant[i]) for i in ranking[:k]]
            if total == 0:
                for name in ("recall", "ndcg", "hr"):
                    out[f"{name}@{k}"].append(math.nan)
                continue
            dcg = sum(1.0 / math.log2(rank + 2) for rank, hit in enumerate(hits) if hit)
            ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, total)))
            out[f"recall@{k}"].append(sum(hits) / total)
            out[f"ndcg@{k}"].append(dcg / ideal)
            out[f"hr@{k}"].append(float(any(hits)))
    return out
