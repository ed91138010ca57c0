"""Independent references: brute force in plain Python and hand-computed cases, both frameworks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from parity_tests._frameworks import FRAMEWORKS, evaluate

METHODS = {"jax": ({"method": "scan"}, {"method": "associative"}), "torch": ({},)}


def brute_listmle(scores, labels, tie_break=None) -> float:
    """-log P(label-sorted permutation) under Plackett–Luce, as an explicit product."""
    n = len(scores)
    ties = tie_break if tie_break is not None else [0.0] * n
    order = sorted(range(n), key=lambda i: (-labels[i], ties[i], i))
    probability = 1.0
    for position, item in enumerate(order):
        rest = order[position:]
        probability *= math.exp(scores[item]) / sum(math.exp(scores[j]) for j in rest)
    return -math.log(probability)


def numeric_grad(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for i in range(len(x)):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (f(up) - f(down)) / (2 * h)
    return grad


def framework_methods():
    return [(fw, kw) for fw in FRAMEWORKS for kw in METHODS[fw]]


@pytest.mark.parametrize(("framework", "method"), framework_methods())
@pytest.mark.parametrize("use_tie_break", [False, True])
def test_listmle_matches_brute_force_plackett_luce(framework, method, use_tie_break):
    rng = np.random.default_rng(11)
    for length in range(1, 8):
        for _ in range(4):
            scores = rng.normal(0, 1.5, length)
            labels = rng.integers(1, 4, length).astype(np.float64)  # ties on purpose
            tie_break = rng.random(length) if use_tie_break else None
            expected = brute_listmle(scores, labels, tie_break)
            kwargs = {"reduction": "sum", **method}
            if use_tie_break:
                kwargs["tie_break"] = tie_break
            value, grad = evaluate(framework, "listmle_loss", scores, labels, **kwargs)
            assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)
            expected_grad = numeric_grad(lambda s, y=labels, t=tie_break: brute_listmle(s, y, t), scores)
            np.testing.assert_allclose(grad, expected_grad, rtol=1e-6, atol=1e-7)


def brute_pairwise(scores, labels):
    terms = [
        math.log1p(math.exp(-(scores[i] - scores[j])))
        for i, j in itertools.permutations(range(len(scores)), 2)
        if labels[i] > labels[j]
    ]
    return sum(terms), len(terms)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_pairwise_matches_brute_force(framework):
    rng = np.random.default_rng(12)
    for length in range(2, 9):
        scores = rng.normal(0, 2, length)
        labels = rng.integers(1, 4, length).astype(np.float64)
        total, count = brute_pairwise(scores, labels)
        value, grad = evaluate(framework, "pairwise_pl_loss", scores, labels, reduction="sum")
        assert value == pytest.approx(total, rel=1e-12, abs=1e-12)
        mean, _ = evaluate(framework, "pairwise_pl_loss", scores, labels, reduction="mean")
        assert mean == pytest.approx(total / max(count, 1), rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(
            grad, numeric_grad(lambda s, y=labels: brute_pairwise(s, y)[0], scores), rtol=1e-6, atol=1e-7
        )


def score_order(scores):
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def brute_ndcg(scores, labels, k):
    def dcg(order):
        return sum((2 ** labels[i] - 1) / math.log2(r + 2) for r, i in enumerate(order[:k]))

    ideal = dcg(sorted(range(len(labels)), key=lambda i: -labels[i]))
    return dcg(score_order(scores)) / ideal if ideal > 0 else 0.0


def brute_mrr(scores, labels, threshold=4):
    for rank, i in enumerate(score_order(scores), start=1):
        if labels[i] >= threshold:
            return 1.0 / rank
    return 0.0


def brute_ap(scores, labels, threshold=4):
    hits, total = 0, 0.0
    for rank, i in enumerate(score_order(scores), start=1):
        if labels[i] >= threshold:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


def brute_recall(scores, labels, k, threshold=4):
    relevant = [i for i in range(len(labels)) if labels[i] >= threshold]
    top = set(score_order(scores)[:k])
    return len(top & set(relevant)) / len(relevant) if relevant else 0.0


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_metrics_match_brute_force(framework):
    rng = np.random.default_rng(13)
    for length in (1, 3, 7, 12):
        for _ in range(5):
            scores = np.round(rng.normal(0, 1, length) * 2) / 2  # score ties: ranked by position
            labels = rng.integers(1, 6, length).astype(np.float64)
            for k in (1, 3, 10):
                value, _ = evaluate(framework, "ndcg_at_k", scores, labels, k=k, grad=False)
                assert value == pytest.approx(brute_ndcg(scores, labels, k), rel=1e-12, abs=1e-12)
                value, _ = evaluate(framework, "recall_at_k", scores, labels, k=k, grad=False)
                assert value == pytest.approx(brute_recall(scores, labels, k), rel=1e-12, abs=1e-12)
            value, _ = evaluate(framework, "mrr", scores, labels, grad=False)
            assert value == pytest.approx(brute_mrr(scores, labels), rel=1e-12, abs=1e-12)
            value, _ = evaluate(framework, "average_precision", scores, labels, grad=False)
            assert value == pytest.approx(brute_ap(scores, labels), rel=1e-12, abs=1e-12)


HAND_CASES = [
    # (function, scores, labels, kwargs, value worked out by hand)
    ("listmle_loss", [0.0, 0.0, 0.0], [3.0, 2.0, 1.0], {}, math.log(3) + math.log(2)),
    ("listmle_loss", [1.0, 0.0], [1.0, 0.0], {}, math.log(1 + math.exp(-1))),
    ("listmle_loss", [1.0, 0.0], [0.0, 1.0], {}, math.log(1 + math.exp(1))),
    (
        "listmle_loss",
        [5.0, 0.0, 1.0],
        [2.0, 2.0, 2.0],
        {"tie_break": np.array([0.9, 0.1, 0.5])},
        math.log(math.exp(0) + math.exp(1) + math.exp(5)) - 0 + math.log(math.exp(1) + math.exp(5)) - 1,
    ),
    ("pairwise_pl_loss", [2.0, 0.0], [0.0, 1.0], {}, math.log(1 + math.exp(2))),
    ("pairwise_pl_loss", [0.0, 0.0, 7.0], [1.0, 1.0, 1.0], {}, 0.0),
    ("ndcg_at_k", [0.1, 0.3, 0.2], [3.0, 2.0, 0.0], {}, (3 + 7 / 2) / (7 + 3 / math.log2(3))),
    ("ndcg_at_k", [0.1, 0.3, 0.2], [3.0, 2.0, 0.0], {"k": 1}, 3 / 7),
    ("mrr", [3.0, 2.0, 1.0], [1.0, 5.0, 4.0], {}, 1 / 2),
    ("average_precision", [3.0, 2.0, 1.0], [1.0, 5.0, 4.0], {}, (1 / 2 + 2 / 3) / 2),
    ("recall_at_k", [3.0, 2.0, 1.0], [1.0, 5.0, 4.0], {"k": 2}, 1 / 2),
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(("name", "scores", "labels", "kwargs", "expected"), HAND_CASES)
def test_hand_computed(framework, name, scores, labels, kwargs, expected):
    value, _ = evaluate(framework, name, np.array(scores), np.array(labels), grad=False, **kwargs)
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)
