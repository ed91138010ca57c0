"""Inputs at the edge of what the functions take: both frameworks give the same number, or
refuse the same argument with an error naming it. Never a traceback, a hang or a silently
wrong value."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jax_ltr
import torch_ltr
from ltr_common import checks
from parity_tests import _bounds
from parity_tests._frameworks import FRAMEWORKS, LOSSES, METRICS, NEEDED_OPTIONS, evaluate
from parity_tests._references import reference

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)
SCORES = np.array([[0.3, -1.0, 2.0, 0.1], [0.5, 1.5, -0.2, 1.0]])
LABELS = np.array([[1.0, 0.0, 2.0, 4.0], [3.0, 1.0, 0.0, 5.0]])
METRIC_SETS = {"jax": jax_ltr.ranking_metrics, "torch": torch_ltr.ranking_metrics}


def _tensor(framework, x):
    return jnp.asarray(x) if framework == "jax" else torch.as_tensor(x)


# Empty lists ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", METRICS)
def test_metrics_of_empty_lists_are_zero(framework, name, dtype):
    empty = np.zeros((3, 0), dtype)
    for reduction, expected in (("none", np.zeros(3)), ("mean", 0.0)):
        value, _ = evaluate(framework, name, empty, empty, grad=False, reduction=reduction)
        np.testing.assert_array_equal(value, expected)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_ranking_metrics_of_empty_lists_are_zero(framework):
    empty = _tensor(framework, np.zeros((2, 0), np.float32))
    out = METRIC_SETS[framework](empty, empty, top_k=(1, 5))
    assert list(out) == ["ndcg@1", "ndcg@5", "mrr", "map", "recall@10"]
    for name, value in out.items():
        np.testing.assert_array_equal(np.asarray(value), np.zeros(2), err_msg=name)


# ApproxNDCG at the extremes of the temperature -----------------------------------------------


def test_approx_ndcg_at_a_tiny_temperature_is_one_minus_ndcg():
    # Every score difference here is at least 0.1, so at T = 1e-38 each sigmoid's argument is
    # at least 1e37 in size: exactly 0 or 1 in float32 and float64, the smooth ranks exactly
    # the true ranks. The value is then 1 - DCG / IDCG, each DCG a sum of n = 4 terms of at
    # most four roundings: within (n + 4) eps of itself, the ratio within 2 (n + 4) + 1 eps
    # (eps = 2^-23, which also covers exp2/log2 within an ulp in either library).
    scores, labels = SCORES.astype(np.float32), LABELS.astype(np.float32)
    where = np.ones(scores.shape, bool)
    n = scores.shape[-1]
    atol = (2 * (n + 4) + 1) * EPS32
    expected, _ = reference("ndcg_at_k", scores.astype(np.float64), labels.astype(np.float64), where)
    results = {
        fw: evaluate(fw, "approx_ndcg_loss", scores, labels, temperature=1e-38, reduction="none")
        for fw in FRAMEWORKS
    }
    for framework, (value, grad) in results.items():
        np.testing.assert_allclose(value, 1.0 - expected, rtol=0, atol=atol, err_msg=framework)
        np.testing.assert_array_equal(grad, np.zeros(scores.shape), err_msg=framework)  # sigma' = 0
    np.testing.assert_allclose(results["jax"][0], results["torch"][0], rtol=0, atol=atol)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("temperature", [2e-39, 1e-45, 1e38, 1e300])
def test_temperatures_whose_reciprocal_is_no_normal_float32_are_refused(framework, temperature):
    # 1 / T scales every score difference: past float32's largest number it is inf (and 0 * inf
    # NaN); below its smallest normal one XLA on CPU flushes it to 0 where PyTorch keeps it.
    with pytest.raises(
        ValueError, match=r"temperature must be a finite number in \[2.9\d*e-39, 8.5\d*e\+37\]"
    ):
        evaluate(framework, "approx_ndcg_loss", SCORES, LABELS, temperature=temperature, grad=False)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("temperature", [3e-39, 8e37])
def test_temperatures_at_the_ends_of_the_range_are_finite(framework, temperature):
    value, grad = evaluate(
        framework, "approx_ndcg_loss", SCORES.astype(np.float32), LABELS, temperature=temperature
    )
    assert np.isfinite(value).all() and np.isfinite(grad).all()


# Softmax with labels near float32's largest number -------------------------------------------


def test_softmax_of_huge_labels_agrees_with_the_reference():
    # Labels summing past 2^126 (whose reciprocal XLA on CPU flushes to 0) and past float32's
    # largest number (where a plain sum is inf): the target distribution is that of the labels
    # scaled down, and the loss that of the float64 reference, within the rounding bound of
    # parity_tests/_bounds.py (softmax).
    scores = SCORES.astype(np.float32)
    labels = np.array([[1e38, 1e38, 0.0, 2.0], [3e38, 3e38, 1e30, 0.0]], np.float32)
    where = np.ones(scores.shape, bool)
    expected, expected_grad = reference(
        "softmax_loss", scores.astype(np.float64), labels.astype(np.float64), where
    )
    magnitude, grad_magnitude, _ = _bounds.softmax(scores, labels, where)
    for framework in FRAMEWORKS:
        value, grad = evaluate(framework, "softmax_loss", scores, labels, reduction="none")
        assert (np.abs(value - expected) <= _bounds.tolerance(magnitude, "float32")).all(), framework
        assert (np.abs(grad - expected_grad) <= _bounds.tolerance(grad_magnitude, "float32")).all(), framework


# LambdaLoss's gradient with respect to the labels ---------------------------------------------


def _label_gradient(framework, name, scores, labels, where, *, jit=False, **options):
    """d sum(loss(reduction="none")) / d labels, float64, as NumPy."""
    options = {**NEEDED_OPTIONS.get(name, {}), **options}
    if framework == "jax":
        with jax.enable_x64(True):
            fn = functools.partial(getattr(jax_ltr, name), **options)

            def total(y):
                return jnp.sum(fn(jnp.asarray(scores), y, where=jnp.asarray(where), reduction="none"))

            grad = jax.grad(jax.jit(total) if jit else total)(jnp.asarray(labels))
            return np.asarray(grad)
    y = torch.tensor(labels, requires_grad=True)
    s = torch.tensor(scores, requires_grad=True)  # as in training: the scores are differentiated too
    value = getattr(torch_ltr, name)(s, y, where=torch.as_tensor(where), reduction="none", **options)
    (grad,) = torch.autograd.grad(value.sum(), y, allow_unused=True)
    return np.zeros(labels.shape) if grad is None else grad.numpy()


def _graded_lists():
    rng = np.random.default_rng(5)
    scores = rng.normal(0, 2, (3, 6))
    labels = rng.uniform(0, 4, (3, 6))  # distinct: the loss is smooth in each label
    where = np.ones((3, 6), bool)
    where[1, 4:] = False
    return scores, labels, where


def _agreement_tolerance(labels, expected):
    # Each label's gradient adds at most L^2 pair terms (the ideal DCG enters every pair), each
    # a product of a few float64 roundings (exp2, log2, log1p, softplus of either library
    # within an ulp or two): both frameworks lie within 16 L^2 eps of the largest entry.
    length = labels.shape[-1]
    return 16 * length**2 * EPS64 * max(1.0, float(np.abs(expected).max()))


@pytest.mark.parametrize("name", LOSSES)
def test_label_gradients_agree_for_every_loss(name):
    scores, labels, where = _graded_lists()
    expected = _label_gradient("torch", name, scores, labels, where)
    atol = _agreement_tolerance(labels, expected)
    for jit in (False, True):
        found = _label_gradient("jax", name, scores, labels, where, jit=jit)
        np.testing.assert_allclose(found, expected, rtol=0, atol=atol, err_msg=f"jit={jit}")


@pytest.mark.parametrize("name", LOSSES)
def test_label_gradients_agree_with_tied_labels_and_masks(name):
    # Tied ratings and masked items: the ideal DCG's places go by the label order in both
    # frameworks (ties by position, masked items last), so even where a label's gradient is a
    # convention (LambdaLoss's pair indicators at a tie) it is the same one.
    rng = np.random.default_rng(6)
    scores, labels = rng.normal(0, 2, (4, 7)), rng.integers(0, 3, (4, 7)).astype(float)
    where = rng.random((4, 7)) > 0.25
    expected = _label_gradient("torch", name, scores, labels, where)
    atol = _agreement_tolerance(labels, expected)
    for jit in (False, True):
        found = _label_gradient("jax", name, scores, labels, where, jit=jit)
        np.testing.assert_allclose(found, expected, rtol=0, atol=atol, err_msg=f"jit={jit}")


@pytest.mark.parametrize("weighting", checks.LAMBDA_WEIGHTINGS)
@pytest.mark.parametrize("normalize", [True, False])
def test_lambda_loss_label_gradient_is_the_finite_difference(weighting, normalize):
    # The independent float64 reference, differenced with the fourth-order central stencil
    # D(h) = (f(y - 2h) - 8 f(y - h) + 8 f(y + h) - f(y + 2h)) / 12h. Its truncation error at h
    # is about (D(2h) - D(h)) / 15 (Richardson), so |D(2h) - D(h)| bounds it fifteen times
    # over. Its rounding: each f, a sum of at most 30 positive pair terms of about 10 roundings
    # each, is within 40 eps f of itself, and the stencil's weights sum to 18 / 12h: 60 eps f / h.
    scores, labels, where = _graded_lists()
    options = {"weighting": weighting, "normalize": normalize}
    h = 1e-3

    def per_list(y):
        return reference("lambda_loss", scores, y, where, reduction="none", **options)[0]

    def stencil(index, step):
        shift = np.zeros(labels.shape)
        shift[index] = step
        at = [per_list(labels + k * shift)[index[0]] for k in (-2, -1, 1, 2)]
        return (at[0] - 8 * at[1] + 8 * at[2] - at[3]) / (12 * step)

    expected, allowed = np.zeros(labels.shape), np.zeros(labels.shape)
    values = per_list(labels)
    for index in zip(*np.nonzero(where), strict=True):
        expected[index] = stencil(index, h)
        rounding = 64 * EPS64 * abs(values[index[0]]) / h
        allowed[index] = abs(stencil(index, 2 * h) - expected[index]) + rounding
    assert np.abs(expected).max() > 1e-2  # the labels do move this loss
    for framework in FRAMEWORKS:
        found = _label_gradient(framework, "lambda_loss", scores, labels, where, **options)
        assert (np.abs(found - expected) <= allowed).all(), (framework, found - expected, allowed)


def test_lambda_loss_score_gradient_alone_computes_no_label_gradient():
    # Training differentiates the scores only: the sweep then carries no label-gradient sum.
    from jax_ltr import _sweeps

    scores, labels, where = (jnp.asarray(x, jnp.float32) for x in _graded_lists())
    where = where.astype(bool)
    traced = []
    real = _sweeps._all_pairs

    def record(*args, **kwargs):
        traced.append(kwargs["label_grad"])
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_sweeps, "_all_pairs", record)
        # Traced, not run: what the sweep is asked for is decided as the gradient is traced.
        jax.make_jaxpr(jax.grad(lambda s: jax_ltr.lambda_loss(s, labels, where=where)))(scores)
        jax.make_jaxpr(jax.grad(lambda y: jax_ltr.lambda_loss(scores, y, where=where)))(labels)
    assert traced == [False, True]


def test_the_pair_count_carries_no_gradient():
    # The counts are piecewise constant; differentiated alone, the sweep's output cotangent is
    # a symbolic zero and so is every input's.
    from jax_ltr._sweeps import all_pairs_loss

    scores, labels, where = (jnp.asarray(x) for x in _graded_lists())
    where = where.astype(bool)

    def count(s, y):
        return jnp.sum(all_pairs_loss(s, y, where, (), 8, ("label_diff", 0.0))[1])

    for grad in jax.grad(count, argnums=(0, 1))(scores, labels):
        np.testing.assert_array_equal(np.asarray(grad), np.zeros(scores.shape))


# Options of the wrong type ---------------------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("alpha", ["0.5", None, True, np.nan, (0.5,)])
def test_alpha_must_be_a_number(framework, alpha):
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\], got"):
        evaluate(framework, "hybrid_loss", SCORES, LABELS, alpha=alpha, grad=False)


# A number option of each loss and metric, and a value of it outside what it takes.
SCALAR_OPTIONS = [
    ("hybrid_loss", "alpha", 0.25, 1.5),
    ("approx_ndcg_loss", "temperature", 0.5, -1.0),
    ("lambda_loss", "mu", 2.0, -1.0),
    ("sigmoid_cross_entropy_loss", "threshold", 2.0, np.inf),
    ("mrr", "relevance_threshold", 3.0, np.nan),
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(("name", "option", "good", "bad"), SCALAR_OPTIONS)
def test_a_number_option_may_be_a_0d_array(framework, name, option, good, bad):
    # As a NumPy or the framework's own 0-d array, outside jit: the same as the number; and
    # refused, naming the number, where the number is.
    package, array = {"jax": (jax_ltr, jnp.asarray), "torch": (torch_ltr, torch.tensor)}[framework]
    scores, labels = array(SCORES), array(LABELS)
    loss = getattr(package, name)
    want = np.asarray(loss(scores, labels, **{option: good}))
    for wrap in (np.asarray, array, lambda x: array(np.float32(x))):
        np.testing.assert_array_equal(np.asarray(loss(scores, labels, **{option: wrap(good)})), want)
        with pytest.raises(ValueError, match=rf"{option} must be .*, got {bad}$"):
            loss(scores, labels, **{option: wrap(bad)})


# torch.func, on its first use, compiles helpers with torch.jit.script, which PyTorch 2.13 deprecates
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_an_array_option_that_holds_more_than_a_number_is_refused():
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\], got array\(\[0.5\]\)"):
        jax_ltr.hybrid_loss(jnp.asarray(SCORES), jnp.asarray(LABELS), alpha=np.array([0.5]))
    alpha = torch.tensor(0.5, requires_grad=True)  # a number taken from it would drop its gradient
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\], got tensor\(0.5"):
        torch_ltr.hybrid_loss(torch.tensor(SCORES), torch.tensor(LABELS), alpha=alpha)
    # Nor one that torch.func or forward-mode AD carries a tangent or a batch in: a number
    # would drop it (the option's tangent would come out 0).
    scores, labels = torch.tensor(SCORES), torch.tensor(LABELS)

    def hybrid(alpha):
        return torch_ltr.hybrid_loss(scores, labels, alpha=alpha)

    for carried in (
        lambda: torch.func.jvp(hybrid, (torch.tensor(0.5),), (torch.tensor(1.0),)),
        lambda: torch.func.vmap(hybrid)(torch.tensor([0.2, 0.5])),
    ):
        with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\], got"):
            carried()
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(torch.tensor(0.5), torch.tensor(1.0))
        with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\], got tensor\(0.5.*tangent"):
            hybrid(dual)
    traced = jax.jit(
        lambda t: jax_ltr.approx_ndcg_loss(jnp.asarray(SCORES), jnp.asarray(LABELS), temperature=t)
    )
    with pytest.raises(ValueError, match=r"temperature must be .* \(fixed when the function is compiled"):
        traced(0.5)
    with pytest.raises(ValueError, match=r"temperature must be a finite number > 0, got -1.0$"):
        jax_ltr.approx_ndcg_loss(jnp.asarray(SCORES), jnp.asarray(LABELS), temperature=np.float32(-1.0))


def test_a_traced_alpha_keeps_the_scores_type():
    # bfloat16 scores, a float32 alpha: the hybrid is bfloat16 however alpha comes, as every
    # loss returns the scores' type.
    scores, labels = jnp.asarray(SCORES, jnp.bfloat16), jnp.asarray(LABELS)
    alpha = jnp.float32(0.5)
    hybrid = functools.partial(jax_ltr.hybrid_loss, scores, labels)
    assert hybrid(alpha=alpha).dtype == jnp.bfloat16
    assert hybrid(alpha=np.float32(0.5)).dtype == jnp.bfloat16
    assert jax.jit(lambda a: hybrid(alpha=a))(alpha).dtype == jnp.bfloat16
    assert jax.vmap(lambda a: hybrid(alpha=a))(jnp.array([0.2, 0.5])).dtype == jnp.bfloat16


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("levels", ["12345", b"12", (True, False), ("1", "2"), (1, None), 5])
def test_levels_must_be_a_sequence_of_numbers(framework, levels):
    with pytest.raises(ValueError, match=r"levels must be a sequence of numbers, got"):
        evaluate(framework, "listmle_loss", SCORES, LABELS, levels=levels, grad=False)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("weights", [(True, False), ("1", "2"), "12"])
def test_position_weights_must_be_numbers(framework, weights):
    with pytest.raises(ValueError, match=r"weights must be 'dcg' or a sequence of numbers >= 0, got"):
        evaluate(framework, "position_listmle_loss", SCORES, LABELS, weights=weights, grad=False)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["mrr", "average_precision", "recall_at_k"])
@pytest.mark.parametrize("threshold", [np.nan, np.inf, -np.inf, "4", None, True])
def test_relevance_threshold_must_be_a_finite_number(framework, name, threshold):
    message = r"relevance_threshold must be a finite number, got"
    with pytest.raises(ValueError, match=message):
        evaluate(framework, name, SCORES, LABELS, relevance_threshold=threshold, grad=False)
    with pytest.raises(ValueError, match=message):
        METRIC_SETS[framework](
            _tensor(framework, SCORES), _tensor(framework, LABELS), relevance_threshold=threshold
        )


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    ("cutoffs", "message"),
    [
        ({"top_k": 5}, r"top_k must be a sequence of integers >= 1, got 5"),
        ({"recall_k": (10, 0)}, r"recall_k must be a sequence of integers >= 1, got \(10, 0\)"),
        ({"top_k": ("5",)}, r"top_k must be a sequence of integers >= 1, got \('5',\)"),
    ],
)
def test_metric_cutoffs_must_be_sequences_of_integers(framework, cutoffs, message):
    with pytest.raises(ValueError, match=message):
        METRIC_SETS[framework](_tensor(framework, SCORES), _tensor(framework, LABELS), **cutoffs)


# Labels that set a gain 2^y - 1 ------------------------------------------------------------------

GAIN_FUNCTIONS = ["ndcg_at_k", "approx_ndcg_loss", "lambda_loss"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", GAIN_FUNCTIONS)
@pytest.mark.parametrize("bad", [-1.0, 64.5, 128.0])
def test_gain_labels_outside_their_range_are_refused(framework, name, bad):
    labels = LABELS.copy()
    labels[1, 2] = bad
    message = rf"labels must lie in \[0, 64\] at valid positions .*, found {bad} at index \(1, 2\)"
    with pytest.raises(ValueError, match=message):
        evaluate(framework, name, SCORES, labels, grad=False, jit=False)  # under jit: NaN (below)
    where = np.ones(labels.shape, bool)
    where[1, 2] = False  # a masked label is ignored entirely
    value, _ = evaluate(framework, name, SCORES, labels, where=where, grad=False, reduction="none")
    assert np.isfinite(value).all()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_ranking_metrics_refuse_gain_labels_outside_their_range(framework):
    labels = LABELS.copy()
    labels[0, 0] = 200.0
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 64\] at valid positions"):
        METRIC_SETS[framework](_tensor(framework, SCORES), _tensor(framework, labels))


@pytest.mark.parametrize("name", GAIN_FUNCTIONS)
@pytest.mark.parametrize("bad", [-1.0, 128.0])
def test_gain_labels_outside_their_range_under_jit_make_that_list_nan(name, bad):
    labels = jnp.array(LABELS).at[1, 2].set(bad)
    fn = jax.jit(lambda s, y: getattr(jax_ltr, name)(s, y, reduction="none"))
    value = np.asarray(fn(jnp.asarray(SCORES), labels))
    assert np.isfinite(value[0]) and np.isnan(value[1])


@pytest.mark.parametrize("name", GAIN_FUNCTIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_largest_gain_label_gives_equal_finite_values(name, dtype):
    # Labels up to 64: gains up to 2^64, their DCG far inside float32's range. The frameworks
    # agree within the rounding bounds of parity_tests/_bounds.py.
    labels = LABELS.copy()
    labels[:, 0] = 64.0
    scores, labels = SCORES.astype(dtype), labels.astype(dtype)
    where = np.ones(scores.shape, bool)
    loss = name in LOSSES
    results = {fw: evaluate(fw, name, scores, labels, reduction="none", grad=loss) for fw in FRAMEWORKS}
    if loss:
        magnitude = _bounds.loss_parts(name, scores, labels, where)
    else:
        magnitude = _bounds.metric(scores, labels, where)
    (jax_value, jax_grad), (torch_value, torch_grad) = results["jax"], results["torch"]
    assert np.isfinite(jax_value).all() and np.isfinite(torch_value).all()
    allowed = _bounds.tolerance(magnitude[0], dtype, reference=torch_value)
    assert (np.abs(jax_value - torch_value) <= allowed).all()
    if loss:
        assert np.isfinite(jax_grad).all() and np.isfinite(torch_grad).all()
        allowed = _bounds.tolerance(magnitude[1], dtype, reference=torch_grad)
        assert (np.abs(jax_grad - torch_grad) <= allowed).all()


# Found by an adversarial pass --------------------------------------------------------------


def test_an_error_of_the_inputs_keeps_the_quick_metrics(monkeypatch):
    # The quick compiled metrics are given up only where XLA's defaults run what they did not.
    from jax_ltr import _metrics

    def failing(*args):
        raise ValueError("an error of these inputs")

    monkeypatch.setattr(_metrics, "_ranking_metrics_quick", failing)
    monkeypatch.setattr(_metrics, "_ranking_metrics", failing)
    with pytest.raises(ValueError, match="an error of these inputs"):
        jax_ltr.ranking_metrics(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))
    assert _metrics._ranking_metrics_quick is failing


@pytest.mark.parametrize("name", ["approx_ndcg_loss", "lambda_loss"])
def test_label_gradients_ignore_masked_items(name):
    # A masked item's gain 0 ties a valid label 0 in the ideal DCG; the valid one's gradient
    # is its own place's, as with the masked item removed, in both frameworks.
    scores, labels, where = (
        np.array([0.1, 0.5, -0.3]),
        np.array([1.0, 0.0, 0.0]),
        np.array([True, False, True]),
    )
    kept = where.nonzero()[0]

    alone = _label_gradient("torch", name, scores[kept], labels[kept], where[kept])
    for framework in FRAMEWORKS:
        found = _label_gradient(framework, name, scores, labels, where)
        np.testing.assert_allclose(found[kept], alone, rtol=8 * EPS64, atol=0, err_msg=framework)


@pytest.mark.parametrize("jit", [True, False])
def test_sigmoid_cross_entropy_of_infinite_logits_in_jax(jit):
    # An infinite logit costs 0 where its target agrees and +inf where it does not, with the
    # finite logits' gradient sigma(s) - t and no NaN. (torch_ltr keeps PyTorch's fused kernel, which
    # gives NaN there: a guard costs it 2.5x at (1024, 200).)
    scores = np.array([[-np.inf, np.inf, 0.5], [np.inf, -np.inf, 0.5], [-np.inf, np.inf, 0.5]])
    labels = np.array([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0], [0.5, 0.25, 0.0]])
    value, grad = evaluate(
        "jax", "sigmoid_cross_entropy_loss", scores, labels, jit=jit, threshold=None, reduction="none"
    )
    np.testing.assert_allclose(value, [np.logaddexp(0, -0.5), np.inf, np.inf], rtol=4 * EPS64)
    sigma = 1 / (1 + np.exp(-0.5))
    np.testing.assert_allclose(grad[0], [0.0, 0.0, sigma - 1], rtol=4 * EPS64, atol=0)
    # where the loss is +inf, an infinite logit's gradient is 0: finite, and no step follows
    np.testing.assert_allclose(grad[1], [0.0, 0.0, sigma], rtol=4 * EPS64, atol=0)


def test_clip_by_global_norm_of_half_precision_and_its_max_norm():
    gradient = {"w": jnp.array([300.0, 400.0], jnp.float16)}  # norm 500: its square overflows float16
    clip = jax_ltr.clip_by_global_norm(1.0)
    clipped = clip.update(gradient, clip.init(gradient))[0]["w"]
    expected = torch.tensor([300.0, 400.0], dtype=torch.float16, requires_grad=True)
    expected.grad = expected.detach().clone()
    torch.nn.utils.clip_grad_norm_([expected], 1.0)
    np.testing.assert_array_equal(np.asarray(clipped), expected.grad.numpy())
    for bad in (0, -1.0, np.nan, -np.inf, "1", None):
        with pytest.raises(ValueError, match=r"max_norm must be a positive number \(inf: no clipping\)"):
            jax_ltr.clip_by_global_norm(bad)
    # inf clips nothing, as in PyTorch (--grad_clip_norm inf)
    unclipped = jax_ltr.clip_by_global_norm(np.inf)
    assert unclipped.update(gradient, unclipped.init(gradient))[0]["w"].tolist() == [300.0, 400.0]


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_suffix_logsumexp_of_a_long_half_precision_list(dtype):
    # log 70000 = 11.16 fits float16; the running sum of 70,000 shares does not.
    out = jax_ltr.suffix_logsumexp(jnp.zeros(70_000, dtype))
    assert out.dtype == dtype
    expected = np.log(np.arange(70_000, 0, -1, dtype=np.float64))
    # the float32 sum rounded once to the 16-bit type: half its unit in the last place
    np.testing.assert_allclose(
        np.asarray(out, np.float64), expected, rtol=float(jnp.finfo(dtype).eps), atol=0
    )


@pytest.mark.parametrize(
    ("option", "call"),
    [
        ("mu", lambda v: jax_ltr.lambda_loss(jnp.zeros(3), jnp.array([1.0, 0.0, 2.0]), mu=v)),
        ("threshold", lambda v: jax_ltr.sigmoid_cross_entropy_loss(jnp.zeros(3), jnp.zeros(3), threshold=v)),
        ("relevance_threshold", lambda v: jax_ltr.mrr(jnp.zeros(3), jnp.zeros(3), relevance_threshold=v)),
    ],
)
def test_a_traced_option_is_refused_as_fixed_at_compile_time(option, call):
    with pytest.raises(ValueError, match=f"{option} must be .* \\(fixed when the function is compiled"):
        jax.jit(call)(1.0)
