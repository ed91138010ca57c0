"""Extreme inputs: finite, documented results in both frameworks, equal to each other.

float32 comparisons use rtol 1e-6 and an absolute tolerance of 4 float32 ulps of the
largest |score| in the case (times the list length for gradients): a log-sum-exp near
|s| = 1e4 is itself only resolved to ulp(1e4), about 1e-3, and a ListMLE gradient is a sum
of up to L probabilities exp(s_k - c_i) that inherit that resolution. Both frameworks are
also held to the same tolerance against an independent float64 reference in plain Python
(``parity_tests._references``: log-sum-exp with its maximum taken out, analytic gradients),
computed from the same float32-rounded inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from parity_tests._frameworks import (
    FRAMEWORKS,
    LOSSES,
    NEEDED_OPTIONS,
    RANKING_LOSSES,
    evaluate,
    evaluate_each,
)
from parity_tests._references import reference

ALL = (*LOSSES, "ndcg_at_k", "mrr", "average_precision", "recall_at_k")


def extreme_batch():
    length = 8
    scores = np.zeros((6, length))
    labels = np.tile(np.arange(length, 0, -1, dtype=np.float64) % 5 + 1, (6, 1))
    where = np.ones((6, length), bool)
    scores[0] = [1e4, -1e4, 0.0, 5e3, -5e3, 1e4, 9999.0, -1e4]  # +-1e4
    scores[1] = np.linspace(-500, 500, length)  # a spread of 1e3
    where[2] = False  # all masked
    where[3, 1:] = False  # one item
    labels[4] = 3.0  # all labels equal
    scores[5] = np.linspace(500, -500, length)
    scores[~where] = np.nan  # NaN and inf at masked positions must not matter
    labels[~where] = np.inf
    return scores, labels, where


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ALL)
def test_extremes_finite_and_equal(name, dtype):
    scores, labels, where = extreme_batch()
    scores, labels = scores.astype(dtype), labels.astype(dtype)
    grad = name in LOSSES
    each = {
        fw: evaluate_each(fw, name, scores, labels, where=where, reductions=("none", "mean"), grad=grad)
        for fw in FRAMEWORKS
    }
    for reduction in ("none", "mean"):
        _check_extremes(
            name, dtype, reduction, scores, labels, where, {fw: each[fw][reduction] for fw in each}
        )


def _check_extremes(name, dtype, reduction, scores, labels, where, results):
    grad = name in LOSSES
    scale = np.nanmax(np.abs(scores))
    if dtype == "float32":
        rtol, atol = 1e-6, 4 * float(np.spacing(np.float32(scale)))
    else:
        rtol, atol = 1e-12, 1e-12 * scale
    grad_atol = atol * scores.shape[-1]
    expected_value, expected_grad = reference(
        name,
        scores.astype(np.float64),
        labels.astype(np.float64),
        where,
        reduction=reduction,
        **NEEDED_OPTIONS.get(name, {}),
    )
    (jax_value, jax_grad), (torch_value, torch_grad) = results["jax"], results["torch"]
    assert np.isfinite(jax_value).all() and np.isfinite(torch_value).all()
    np.testing.assert_allclose(jax_value, torch_value, rtol=rtol, atol=atol)
    for framework, (value, _) in results.items():
        np.testing.assert_allclose(value, expected_value, rtol=rtol, atol=atol, err_msg=framework)
    if grad:
        assert np.isfinite(jax_grad).all() and np.isfinite(torch_grad).all()
        np.testing.assert_allclose(jax_grad, torch_grad, rtol=rtol, atol=grad_atol)
        for framework, (_, g) in results.items():
            np.testing.assert_allclose(g, expected_grad, rtol=rtol, atol=grad_atol, err_msg=framework)
        assert (jax_grad[~where] == 0).all() and (torch_grad[~where] == 0).all()
    if reduction == "none":
        # All-masked and one-item lists carry no order: every loss and metric is 0 there,
        # except that a one-item list has a perfect ranking when its label is relevant.
        assert jax_value[2] == 0
        if name in RANKING_LOSSES:
            assert jax_value[3] == 0
        if name == "pairwise_pl_loss":
            assert jax_value[4] == 0  # all labels equal: no pair counts


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", LOSSES)
def test_no_valid_item_gives_zero_with_zero_gradient(framework, name):
    # Shaped as the next test's batch: one compiled program serves both.
    scores, labels = (
        np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
        np.array([[2.0, 1.0, 3.0], [1.0, 3.0, 2.0]]),
    )
    value, grad = evaluate(framework, name, scores, labels, where=np.zeros((2, 3), bool), reduction="mean")
    assert value == 0 and (grad == 0).all()


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", RANKING_LOSSES)
def test_nothing_to_count_gives_zero_with_zero_gradient(framework, name):
    scores = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    labels = np.array([[2.0, 2.0, 2.0], [1.0, 3.0, 2.0]])
    where = np.array([[True, False, False], [False, False, False]])  # one item, nothing
    value, grad = evaluate(framework, name, scores, labels, where=where, reduction="mean")
    assert value == 0 and (grad == 0).all()


@pytest.mark.parametrize("span", [8.0, 40.0, 43.0, 60.0, 400.0])
@pytest.mark.parametrize("name", ["listmle_loss", "position_listmle_loss"])
def test_listmle_wide_spans_within_the_bound(name, span):
    """JAX's ListMLE takes one shift per list (its largest score) where every list's scores
    span at most 43 in float32 and a running max beyond (``jax_ltr._losses._one_shift``);
    both stay within the parity bound of the float64 reference. The shift's worst case: the
    largest score first in the label order and the rest near 0, each term then rounded at
    the span rather than at its own size."""
    import jax.numpy as jnp

    from jax_ltr._losses import _one_shift
    from parity_tests import _bounds
    from parity_tests._frameworks import evaluate

    rng = np.random.default_rng(3)
    scores = rng.normal(0.0, 0.5, (8, 48))
    scores[:, 0] = span * np.where(np.arange(8) % 2, 1.0, -1.0)  # the largest or smallest
    labels = np.tile(np.arange(48, 0, -1) % 5 + 1.0, (8, 1))
    where = rng.random(scores.shape) > 0.1
    where[:, 0] = True
    scores, labels = scores.astype("float32"), labels.astype("float32")
    spanned = np.ptp(np.where(where, scores, scores[:, :1]), axis=-1).max()
    _, fits = _one_shift(jnp.asarray(scores), jnp.asarray(where), jnp.asarray(where.sum(-1)), None)
    assert bool(fits) == (spanned <= np.log(np.finfo(np.float32).max) / 2 - 1)
    value, grad = evaluate("jax", name, scores, labels, where=where, reduction="none", grad=True)
    expected_value, expected_grad = reference(
        name, scores.astype(np.float64), labels.astype(np.float64), where, reduction="none"
    )
    magnitude = _bounds.loss_parts(name, scores, labels, where)
    assert (np.abs(value - expected_value) <= _bounds.tolerance(magnitude[0], "float32")).all()
    assert (np.abs(grad - expected_grad) <= _bounds.tolerance(magnitude[1], "float32")).all()


@pytest.mark.parametrize("span", [40.0, 60.0])
def test_one_shift_only_is_the_full_call_where_its_check_holds(span):
    """Within ``one_shift_only`` (the trainer's first try at a step) ListMLE leaves its
    fallback out and reports the check: where it holds, value and gradient are within the
    parity bound of the float64 reference, as the full call's are; a wider span fails it; a
    NaN score gives NaN whatever the check says."""
    import jax
    import jax.numpy as jnp

    from jax_ltr._losses import listmle_loss, one_shift_only
    from parity_tests import _bounds
    from parity_tests._jaxprs import equations

    rng = np.random.default_rng(4)
    scores = rng.normal(0.0, 0.5, (8, 48)).astype("float32")
    scores[:, 0] = span * np.where(np.arange(8) % 2, 1.0, -1.0)
    labels = np.tile(np.arange(48, 0, -1) % 5 + 1.0, (8, 1)).astype("float32")

    def one_shift(x):
        with one_shift_only() as checks:
            value = listmle_loss(x, labels, reduction="sum")
        return value, checks

    (value, checks), grad = jax.value_and_grad(one_shift, has_aux=True)(jnp.asarray(scores))
    assert [bool(check) for check in checks] == [span <= 43]

    # The fallback's two branches (value, gradient) are not in the program.
    def full(x):
        return listmle_loss(x, labels, reduction="sum"), []

    traced = [jax.make_jaxpr(jax.value_and_grad(f, has_aux=True))(scores).jaxpr for f in (one_shift, full)]
    conds = [len(list(equations(jaxpr, "cond", outermost=True))) for jaxpr in traced]
    assert conds[0] == conds[1] - 2
    if span <= 43:
        where = np.ones(scores.shape, bool)
        expected_value, expected_grad = reference("listmle_loss", scores.astype(np.float64), labels, where)
        magnitude = _bounds.loss_parts("listmle_loss", scores, labels, where)
        assert abs(float(value) - expected_value.sum()) <= _bounds.tolerance(magnitude[0], "float32").sum()
        assert (np.abs(grad - expected_grad) <= _bounds.tolerance(magnitude[1], "float32")).all()
    (value, _), grad = jax.value_and_grad(one_shift, has_aux=True)(jnp.asarray(scores).at[0, 5].set(jnp.nan))
    assert np.isnan(float(value)) and np.isnan(grad[0]).all()


@pytest.mark.parametrize("case", ["nan", "inf", "heavy weights"])
def test_one_shift_refuses_what_it_cannot_hold(case):
    import jax.numpy as jnp

    from jax_ltr._losses import _one_shift

    scores, where, count = jnp.zeros((2, 4)), jnp.ones((2, 4), bool), jnp.full(2, 4)
    weights = jnp.ones((4, 2))  # the places' weights, one list per column
    if case == "heavy weights":  # the gradient's running sums could overflow
        weights = weights.at[0, 1].set(1e19)
    else:
        scores = scores.at[1, 2].set(jnp.nan if case == "nan" else jnp.inf)
    assert not bool(_one_shift(scores, where, count, weights)[1])
    # without the culprit (the item masked, or weights of 1) the shift holds
    assert bool(_one_shift(scores, where.at[1, 2].set(False), count.at[1].set(3), jnp.ones((4, 2)))[1])
    assert bool(_one_shift(scores, where.at[1, 2].set(False), count.at[1].set(3), None)[1])


def test_log1p_is_accurate_where_one_plus_x_rounds():
    # ListMLE's value terms log1p(S_{p+1} / share_p), given S_p / share_p as rounded: within
    # 8 ulps of float32 (two roundings of the ratio, the log's own, the quotient and the
    # product), also where the ratio rounds to 1 and log(S_p / share_p) would be 0.
    import jax

    from jax_ltr._losses import _log1p

    rng = np.random.default_rng(8)
    share = rng.uniform(0.5, 2.0, 4002).astype(np.float32)
    later = (share * np.concatenate([[0.0], np.geomspace(1e-30, 1e6, 4001)])).astype(np.float32)
    total = share + later  # as a running sum adds them
    got = jax.jit(lambda s, after, t: _log1p(after / s, t / s))(share, later, total)
    want = np.log1p(later.astype(np.float64) / share.astype(np.float64))
    assert float(got[0]) == 0.0
    assert (np.abs(np.asarray(got, np.float64) - want) <= 8 * np.finfo(np.float32).eps * want).all()


@pytest.mark.parametrize("weighted", [False, True])
def test_one_shift_counts_the_valid_items_where_the_sums_could_overflow(weighted):
    # The gradient's running sums reach the weights' sum (without weights, the count) times
    # exp(span), the value's ratios the count times exp(span): float16's limit (exp(4.5),
    # about 94) is below many a length, float32's (exp(43)) above any.
    import jax.numpy as jnp

    from jax_ltr._losses import _one_shift

    scores, where = jnp.zeros((1, 100), jnp.float16), jnp.ones((1, 100), bool)
    weights = (jnp.arange(100) < 5).astype(jnp.float16)[:, None] if weighted else None  # top-5
    assert not bool(_one_shift(scores, where, jnp.array([100]), weights)[1])
    assert bool(_one_shift(scores, where.at[0, 90:].set(False), jnp.array([90]), weights)[1])
    assert bool(_one_shift(scores.astype(jnp.float32), where, jnp.array([100]), weights)[1])


@pytest.mark.parametrize(("span", "method"), [(8.0, "scan"), (400.0, "scan"), (400.0, "associative")])
def test_weights_shared_by_every_list_are_the_masked_weights_of_each(span, method):
    """``listmle_rows`` takes place weights shared by every list as [L, 1] and never
    writes them out at [L, N]: the weights of places no list reaches change no value and no
    gradient, with one shift (span 8; large weights there, whose sum the shift's check
    still passes) and with the running max (span 400; infinite and NaN weights there, which
    would fail the check anyway). Within ``one_shift_only`` (the trainer's first try) such
    weights, -inf among them, fail the check, and the one shift's values are still right."""
    import jax
    import jax.numpy as jnp

    from jax_ltr._losses import _one_shift, listmle_rows, one_shift_only
    from parity_tests import _bounds

    rng = np.random.default_rng(5)
    columns = rng.normal(0.0, 1.0, (48, 6)).astype("float32")
    columns[0] = span * np.where(np.arange(6) % 2, 1.0, -1.0)
    valid = np.arange(48)[:, None] < rng.integers(0, 31, 6)[None, :]  # a prefix of each list
    valid[:, 0] = np.arange(48) < 30  # the longest: places 30 and after are no list's
    shared = (1.0 / np.log2(np.arange(48) + 2.0))[:, None].astype("float32")
    if span < 43:
        shared[30:] = 1e15  # 18e15 in all: below exp(43)
    else:
        shared[30:40], shared[40:] = np.inf, np.nan
    masked = np.where(valid, shared, 0.0).astype("float32")
    rows, count = jnp.asarray(columns.T), jnp.asarray(valid.sum(axis=0))
    _, fits = _one_shift(rows, jnp.asarray(valid.T), count, jnp.asarray(shared))
    assert bool(fits) == (span < 43)  # each path taken where it should be

    def total(x, weights):  # x: one list per column, already in label order
        return jnp.sum(listmle_rows(x.T, jnp.asarray(valid.T), count, None, jnp.asarray(weights), method))

    # What each side sums: per list, the weighted terms w_i (c_i - s_i), each at most
    # 2 max|s| + log L; per gradient entry, at most the list's weights.
    per_list = masked.sum(axis=0)
    value_magnitude = (per_list * (2 * np.abs(columns).max() + np.log(48))).sum()

    def assert_as_masked(got):
        want = jax.value_and_grad(total)(jnp.asarray(columns), masked)
        assert np.isfinite(float(got[0])) and np.isfinite(np.asarray(got[1])).all()
        assert abs(float(got[0]) - float(want[0])) <= _bounds.tolerance(value_magnitude, "float32")
        gap = np.abs(np.asarray(got[1]) - np.asarray(want[1]))
        assert (gap <= _bounds.tolerance(per_list, "float32")).all()

    assert_as_masked(jax.value_and_grad(total)(jnp.asarray(columns), shared))
    if span < 43:
        for fill in (np.inf, np.nan, -np.inf):
            bad = shared.copy()
            bad[30:] = fill

            def one_shift(x, bad=bad):
                with one_shift_only() as checks:
                    return total(x, bad), checks

            (value, checks), grad = jax.value_and_grad(one_shift, has_aux=True)(jnp.asarray(columns))
            assert [bool(check) for check in checks] == [False], fill
            assert_as_masked((value, grad))


@pytest.mark.parametrize("method", ["scan", "associative"])
def test_suffix_logsumexp_equals_the_reference_on_every_special_value(method):
    # Every list of up to three items drawn from +-inf, NaN, large and ordinary values, each
    # item valid or not: -inf where nothing is valid from there on, +inf at and before a
    # valid +inf, NaN at and before a valid NaN, as PyTorch's logcumsumexp gives them.
    import itertools

    import jax
    import torch

    import jax_ltr
    import torch_ltr

    values = (0.0, 1.0, np.inf, -np.inf, np.nan, -1e3)
    for length in (1, 2, 3):
        combos = list(itertools.product(values, repeat=length))
        masks = list(itertools.product([True, False], repeat=length))
        x = np.array([combo for combo in combos for _ in masks], np.float32)
        where = np.array([mask for _ in combos for mask in masks])
        theirs = torch_ltr.suffix_logsumexp(torch.from_numpy(x), where=torch.from_numpy(where)).numpy()
        ours = jax.jit(lambda x, w: jax_ltr.suffix_logsumexp(x, where=w, method=method))(x, where)
        close = np.isclose(np.asarray(ours), theirs, rtol=1e-6, atol=0.0, equal_nan=True)
        assert close.all(), (x[~close.all(-1)][:3], np.asarray(ours)[~close.all(-1)][:3])


@pytest.mark.parametrize("name", ["ndcg_at_k", "mrr", "average_precision", "recall_at_k"])
def test_metrics_rank_every_valid_score_before_the_masked_items(name):
    # Every list of three items with scores drawn from +-inf, NaN, +-0 and 1, each valid or
    # not: the valid items are ranked first whatever their scores, a NaN after every number.
    import itertools

    import jax
    import torch

    import jax_ltr
    import torch_ltr

    values = (0.0, -0.0, 1.0, np.inf, -np.inf, np.nan)
    combos = list(itertools.product(values, repeat=3))
    masks = list(itertools.product([True, False], repeat=3))
    scores = np.array([combo for combo in combos for _ in masks], np.float32)
    where = np.array([mask for _ in combos for mask in masks])
    labels = np.random.default_rng(3).integers(0, 6, scores.shape).astype(np.float32)
    options = {"k": 2} if name in ("ndcg_at_k", "recall_at_k") else {}

    def ours(s, y, w):
        return getattr(jax_ltr, name)(s, y, where=w, reduction="none", **options)

    theirs = getattr(torch_ltr, name)(
        *(torch.from_numpy(x) for x in (scores, labels)),
        where=torch.from_numpy(where),
        reduction="none",
        **options,
    )
    got = np.asarray(jax.jit(ours)(scores, labels, where))
    differ = ~np.isclose(got, theirs.numpy(), rtol=1e-6, equal_nan=True)
    assert not differ.any(), (
        scores[differ][:3],
        where[differ][:3],
        got[differ][:3],
        theirs.numpy()[differ][:3],
    )


@pytest.mark.parametrize("infinity", [np.inf, -np.inf])
def test_approx_ndcg_takes_an_infinite_score_at_its_limit(infinity):
    # sigma(+-inf) is 1 or 0: the smooth ranks, the value and the other items' gradients are
    # PyTorch's; the infinite item's own gradient is sigma'(+-inf) = 0 (PyTorch's autograd
    # gives NaN there, from the inf - inf of the item's pair with itself, which it masks).
    import jax
    import torch

    import jax_ltr
    import torch_ltr

    scores = np.array([[0.0, infinity, 1.0, 0.5], [0.3, 1.2, -0.4, 0.5]], np.float32)
    labels = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 2.0, 1.0, 4.0]], np.float32)
    value, grad = jax.value_and_grad(lambda s: jax_ltr.approx_ndcg_loss(s, labels, reduction="sum"))(scores)
    leaf = torch.from_numpy(scores).requires_grad_(True)
    theirs = torch_ltr.approx_ndcg_loss(leaf, torch.from_numpy(labels), reduction="sum")
    theirs.backward()
    np.testing.assert_allclose(float(value), theirs.item(), rtol=1e-6)
    finite = np.isfinite(scores)
    np.testing.assert_allclose(np.asarray(grad)[finite], leaf.grad.numpy()[finite], rtol=1e-5, atol=1e-7)
    assert np.asarray(grad)[~finite].tolist() == [0.0]


@pytest.mark.parametrize(
    ("name", "sampled"),
    [
        ("pairwise_pl_loss", False),
        ("pairwise_pl_loss", True),
        ("hybrid_loss", False),
        ("hybrid_loss", True),
        ("listmle_loss", False),
    ],
)
def test_labels_apart_by_subnormal_amounts_are_different_labels(name, sampled):
    # XLA on CPU reads a subnormal float as 0 in a comparison; PyTorch tells 1e-40 from 0, and
    # so do the JAX losses: the pairwise ones compare labels by their integer keys, as the
    # label order does.
    import torch

    import jax_ltr
    import torch_ltr

    scores = np.array([[0.0, 1.0, -0.5, 0.25], [2.0, 0.0, 1.0, -1.0]], np.float32)
    labels = np.array([[1e-40, 0.0, 2e-40, -1e-40], [3e-39, 1e-39, 0.0, 1e-39]], np.float32)
    ours_options, their_options = {}, {}
    if sampled:
        pairs = tuple(np.array(x) for x in ([0, 0, 0, 1, 1], [0, 2, 3, 0, 1], [1, 0, 1, 2, 3]))
        ours_options, their_options = {"pairs": pairs}, {"pairs": tuple(torch.from_numpy(p) for p in pairs)}
    ours = getattr(jax_ltr, name)(scores, labels, reduction="none", **ours_options)
    theirs = getattr(torch_ltr, name)(
        torch.from_numpy(scores), torch.from_numpy(labels), reduction="none", **their_options
    )
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=1e-6)
