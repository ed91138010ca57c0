"""Independent references: brute force in plain Python and hand-computed cases, both frameworks.

Random lists of every length up to 7 (12 for metrics) are padded into one masked batch — NaN
scores and labels at the masked positions — so each framework compiles once per function.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from parity_tests import _references as ref
from parity_tests._frameworks import FRAMEWORKS, evaluate

METHODS = {"jax": ({"method": "scan"}, {"method": "associative"}), "torch": ({},)}


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


def padded(lists, width):
    """``lists`` of (scores, labels, tie_break) as [B, width] arrays with a mask; NaN padding."""
    shape = (len(lists), width)
    scores, labels, ties = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    where = np.zeros(shape, bool)
    for b, (s, y, t) in enumerate(lists):
        n = len(s)
        scores[b, :n], labels[b, :n], ties[b, :n], where[b, :n] = s, y, t, True
    return scores, labels, ties, where


def random_lists(rng, lengths, repeats, *, score_scale, grid=None, label_high):
    out = []
    for length in lengths:
        for _ in range(repeats):
            scores = rng.normal(0, score_scale, length)
            if grid is not None:
                scores = np.round(scores / grid) * grid  # score ties: ranked by position
            labels = rng.integers(1, label_high, length).astype(np.float64)  # ties on purpose
            out.append((scores, labels, rng.random(length)))
    return out


@pytest.mark.parametrize(("framework", "method"), framework_methods())
@pytest.mark.parametrize("use_tie_break", [False, True])
def test_listmle_matches_brute_force_plackett_luce(framework, method, use_tie_break):
    lists = random_lists(np.random.default_rng(11), range(1, 8), 4, score_scale=1.5, label_high=4)
    scores, labels, ties, where = padded(lists, 7)
    kwargs = {"reduction": "none", "where": where, **method}
    if use_tie_break:
        kwargs["tie_break"] = ties
    values, grads = evaluate(framework, "listmle_loss", scores, labels, **kwargs)
    for b, (s, y, t) in enumerate(lists):
        t = t if use_tie_break else None
        assert values[b] == pytest.approx(ref.brute_listmle(s, y, t), rel=1e-12, abs=1e-12)
        expected = numeric_grad(lambda x, y=y, t=t: ref.brute_listmle(x, y, t), s)
        np.testing.assert_allclose(grads[b, : len(s)], expected, rtol=1e-6, atol=1e-7)
        assert (grads[b, len(s) :] == 0).all()


def brute_pairwise(scores, labels):
    """Every ordered pair straight from the definition (no shared code with ``ref.pairwise``)."""
    terms = [
        math.log1p(math.exp(-(scores[i] - scores[j])))
        for i in range(len(scores))
        for j in range(len(scores))
        if labels[i] > labels[j]
    ]
    return sum(terms), len(terms)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_pairwise_matches_brute_force(framework):
    lists = random_lists(np.random.default_rng(12), range(2, 9), 1, score_scale=2.0, label_high=4)
    scores, labels, _, where = padded(lists, 8)
    values, grads = evaluate(framework, "pairwise_pl_loss", scores, labels, where=where, reduction="none")
    mean, _ = evaluate(framework, "pairwise_pl_loss", scores, labels, where=where, reduction="mean")
    totals, counts = zip(*(brute_pairwise(s, y) for s, y, _ in lists), strict=True)
    np.testing.assert_allclose(values, totals, rtol=1e-12, atol=1e-12)
    assert mean == pytest.approx(sum(totals) / sum(counts), rel=1e-12)
    for b, (s, y, _) in enumerate(lists):
        expected = numeric_grad(lambda x, y=y: brute_pairwise(x, y)[0], s)
        np.testing.assert_allclose(grads[b, : len(s)], expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_metrics_match_brute_force(framework):
    rng = np.random.default_rng(13)
    lists = random_lists(rng, (1, 3, 7, 12), 5, score_scale=1.0, grid=0.5, label_high=6)
    scores, labels, _, where = padded(lists, 12)
    checks = [("mrr", {}, ref.mrr), ("average_precision", {}, ref.average_precision)]
    for k in (1, 3, 10):
        checks += [
            ("ndcg_at_k", {"k": k}, lambda s, y, k=k: ref.ndcg(s, y, k)),
            ("recall_at_k", {"k": k}, lambda s, y, k=k: ref.recall(s, y, k)),
        ]
    for name, options, brute in checks:
        values, _ = evaluate(
            framework, name, scores, labels, where=where, reduction="none", grad=False, **options
        )
        expected = [brute(list(s), list(y)) for s, y, _ in lists]
        np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-12, err_msg=f"{name} {options}")


def test_the_safe_listmle_reference_equals_the_brute_force_one():
    rng = np.random.default_rng(14)
    for s, y, t in random_lists(rng, range(1, 7), 3, score_scale=2.0, label_high=4):
        value, grad = ref.listmle(list(s), list(y), list(t))
        assert value == pytest.approx(ref.brute_listmle(s, y, t), rel=1e-12, abs=1e-12)
        expected = numeric_grad(lambda x, y=y, t=t: ref.brute_listmle(x, y, t), s)
        np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-7)
    for s, y, _ in random_lists(rng, range(2, 7), 3, score_scale=2.0, label_high=4):
        value, count, grad = ref.pairwise(list(s), list(y))
        assert (value, count) == pytest.approx(brute_pairwise(s, y), rel=1e-12)
        np.testing.assert_allclose(
            grad, numeric_grad(lambda x, y=y: brute_pairwise(x, y)[0], s), rtol=1e-6, atol=1e-7
        )


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


# (function, options, the places' weights the brute force applies for a list of n items)
WEIGHTED_LISTMLE = [
    ("topk_listmle_loss", {"k": 1}, lambda n: [1.0]),
    ("topk_listmle_loss", {"k": 3}, lambda n: [1.0] * 3),
    ("position_listmle_loss", {}, lambda n: [1 / math.log2(p + 2) for p in range(n)]),
    ("position_listmle_loss", {"weights": (3.0, 0.5)}, lambda n: [3.0, 0.5]),
]


@pytest.mark.parametrize(("framework", "method"), framework_methods())
@pytest.mark.parametrize(("name", "options", "weights"), WEIGHTED_LISTMLE)
def test_weighted_listmle_matches_brute_force_plackett_luce(framework, method, name, options, weights):
    lists = random_lists(np.random.default_rng(15), range(1, 8), 3, score_scale=1.5, label_high=4)
    scores, labels, ties, where = padded(lists, 7)
    kwargs = {"reduction": "none", "where": where, "tie_break": ties, **method, **options}
    values, grads = evaluate(framework, name, scores, labels, **kwargs)
    for b, (s, y, t) in enumerate(lists):
        w = weights(len(s))
        assert values[b] == pytest.approx(ref.brute_listmle(s, y, t, w), rel=1e-12, abs=1e-12)
        expected = numeric_grad(lambda x, y=y, t=t, w=w: ref.brute_listmle(x, y, t, w), s)
        np.testing.assert_allclose(grads[b, : len(s)], expected, rtol=1e-6, atol=1e-7)
        assert (grads[b, len(s) :] == 0).all()


@pytest.mark.parametrize(("framework", "method"), framework_methods())
@pytest.mark.parametrize("k", [1, 3, 6])
def test_top_k_listmle_in_position_order_matches_brute_force(framework, method, k):
    # Without a tie order JAX orders only the first k places (``first_places``): ratings with
    # ties, lists shorter than k, a list with one valid item.
    lists = random_lists(np.random.default_rng(17), range(1, 8), 3, score_scale=1.5, label_high=3)
    scores, labels, _, where = padded(lists, 7)
    kwargs = {"reduction": "none", "where": where, "k": k, **method}
    values, grads = evaluate(framework, "topk_listmle_loss", scores, labels, **kwargs)
    for b, (s, y, _) in enumerate(lists):
        position = np.zeros(len(s))
        assert values[b] == pytest.approx(ref.brute_listmle(s, y, position, [1.0] * k), rel=1e-12, abs=1e-12)
        expected = numeric_grad(lambda x, y=y, t=position: ref.brute_listmle(x, y, t, [1.0] * k), s)
        np.testing.assert_allclose(grads[b, : len(s)], expected, rtol=1e-6, atol=1e-7)
        assert (grads[b, len(s) :] == 0).all()


def brute_softmax(scores, labels):
    """-sum_i p_i log(exp(s_i) / sum_j exp(s_j)) straight from the definition."""
    total = sum(labels)
    norm = sum(math.exp(s) for s in scores)
    return -sum(y / total * math.log(math.exp(s) / norm) for s, y in zip(scores, labels, strict=True))


def brute_sigmoid(scores, targets):
    """-t log sigma(s) - (1 - t) log(1 - sigma(s)), summed, straight from the definition."""
    sigma = [1 / (1 + math.exp(-s)) for s in scores]
    return -sum(t * math.log(p) + (1 - t) * math.log(1 - p) for p, t in zip(sigma, targets, strict=True))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_softmax_and_sigmoid_match_brute_force(framework):
    rng = np.random.default_rng(16)
    lists = random_lists(rng, range(1, 8), 3, score_scale=1.5, label_high=6)
    lists.append((np.array([0.5, -1.0]), np.array([1.0, 1.0]), np.zeros(2)))  # 0 after the shift below
    scores, labels, _, where = padded(lists, 7)
    labels = np.where(where, labels - 1.0, np.nan)  # 0 .. 4: some lists sum to 0
    values, grads = evaluate(framework, "softmax_loss", scores, labels, where=where, reduction="none")
    mean, _ = evaluate(framework, "softmax_loss", scores, labels, where=where, reduction="mean")
    counted = []
    for b, (s, _, _) in enumerate(lists):
        y = labels[b, : len(s)]
        if y.sum() == 0:  # contributes nothing, counts for nothing
            assert values[b] == 0 and (grads[b] == 0).all()
            continue
        counted.append(brute_softmax(s, y))
        assert values[b] == pytest.approx(counted[-1], rel=1e-12, abs=1e-12)
        expected = numeric_grad(lambda x, y=y: brute_softmax(x, y), s)
        np.testing.assert_allclose(grads[b, : len(s)], expected, rtol=1e-6, atol=1e-7)
    assert mean == pytest.approx(np.mean(counted), rel=1e-12)
    values, grads = evaluate(
        framework, "sigmoid_cross_entropy_loss", scores, labels, where=where, threshold=2.0, reduction="none"
    )
    for b, (s, _, _) in enumerate(lists):
        t = (labels[b, : len(s)] >= 2.0).astype(float)
        assert values[b] == pytest.approx(brute_sigmoid(s, t), rel=1e-12, abs=1e-12)
        expected = numeric_grad(lambda x, t=t: brute_sigmoid(x, t), s)
        np.testing.assert_allclose(grads[b, : len(s)], expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_approx_ndcg_matches_its_definition(framework):
    lists = random_lists(np.random.default_rng(17), range(1, 8), 3, score_scale=1.5, label_high=4)
    scores, labels, _, where = padded(lists, 7)
    labels = np.where(where, labels - 1.0, np.nan)  # 0 .. 2: some lists have nothing relevant
    values, grads = evaluate(
        framework, "approx_ndcg_loss", scores, labels, where=where, temperature=0.5, reduction="none"
    )
    for b, (s, _, _) in enumerate(lists):
        y = list(labels[b, : len(s)])
        value, grad, _ = ref.approx_ndcg(list(s), y, 0.5)
        assert values[b] == pytest.approx(value, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(grads[b, : len(s)], grad, rtol=1e-10, atol=1e-12)
        numeric = numeric_grad(lambda x, y=y: ref.approx_ndcg(list(x), y, 0.5)[0], s)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    ("weighting", "normalize"),
    [("ndcg_loss2++", True), ("ndcg_loss2", True), ("dcg", True), ("dcg", False), ("label_diff", True)],
)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_lambda_loss_matches_its_definition(framework, weighting, normalize):
    # Scores on a grid of 0.5: tied scores take their ranks by position, as in the reference.
    rng = np.random.default_rng(18)
    lists = random_lists(rng, range(1, 9), 3, score_scale=1.5, grid=0.5, label_high=5)
    scores, labels, _, where = padded(lists, 8)
    labels = np.where(where, labels - 1.0, np.nan)  # 0 .. 3
    options = {"weighting": weighting, "normalize": normalize}
    values, grads = evaluate(
        framework, "lambda_loss", scores, labels, where=where, reduction="none", **options
    )
    mean, _ = evaluate(framework, "lambda_loss", scores, labels, where=where, **options)
    total = count = 0
    for b, (s, _, _) in enumerate(lists):
        y = list(labels[b, : len(s)])
        weight = ref.lambda_weight(list(s), y, **options)
        value, pairs, grad = ref.pairwise(list(s), y, weight)
        total, count = total + value, count + pairs
        assert values[b] == pytest.approx(value, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(grads[b, : len(s)], grad, rtol=1e-10, atol=1e-12)
        assert (grads[b, len(s) :] == 0).all()
        # The weights are constants of the gradient: away from score ties (the grid's are
        # moved apart here) the numeric derivative, ranks held by the small step, agrees.
        apart = s + np.arange(len(s)) * 1e-3
        weight = ref.lambda_weight(list(apart), y, **options)
        _, _, grad = ref.pairwise(list(apart), y, weight)
        numeric = numeric_grad(lambda x, y=y, weight=weight: ref.pairwise(list(x), y, weight)[0], apart)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    assert mean == pytest.approx(total / count, rel=1e-12)


def test_top_k_first_places_keep_float32_accuracy_at_large_scores(monkeypatch):
    # Each term is (running max - s) + log(rescaled sum): no rounding at the log-sum-exp's
    # magnitude, so scores offset by 1e4 in float32 give what the full order's closed form
    # gives (a difference c - s taken at |c| ~ 1e4 would be off by k ulps of 1e4, ~1e-2).
    import jax
    import jax.numpy as jnp

    import jax_ltr
    from jax_ltr import _losses

    rng = np.random.default_rng(18)
    scores = (rng.normal(0, 1, (4, 50)) + 1e4).astype(np.float32)
    labels = rng.normal(size=(4, 50)).astype(np.float32)
    # float64 Plackett–Luce on the same float32 inputs, shifted (the loss is shift-invariant;
    # exp(1e4) overflows)
    exact = ref.brute_listmle
    first = jax.jit(lambda s: jax_ltr.topk_listmle_loss(s, jnp.asarray(labels), k=10, reduction="none"))
    got = np.asarray(first(jnp.asarray(scores)))
    for row in range(4):
        want = exact(scores[row].astype(np.float64) - 1e4, labels[row], np.zeros(50), [1.0] * 10)
        assert abs(got[row] - want) <= 1e-5 * want
    monkeypatch.setattr(_losses, "FIRST_PLACES_MAX", 0)  # the full order, for comparison
    full = np.asarray(jax.jit(lambda s: jax_ltr.topk_listmle_loss(s, jnp.asarray(labels), k=10))(scores))
    assert abs(full - got.mean()) <= 1e-5 * full
