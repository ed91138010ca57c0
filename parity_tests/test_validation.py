"""Bad arguments get a ValueError naming the argument, in both frameworks alike."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_ltr
from parity_tests._frameworks import FRAMEWORKS, LOSSES, METRICS, evaluate

ALL = LOSSES + METRICS
GOOD_SCORES = np.zeros((2, 3))
GOOD_LABELS = np.ones((2, 3))

BAD = [
    (
        "labels shape",
        GOOD_SCORES,
        np.ones((2, 4)),
        {},
        r"labels shape \(2, 4\).*does not match scores shape \(2, 3\)",
    ),
    (
        "integer scores",
        np.zeros((2, 3), np.int32),
        GOOD_LABELS,
        {},
        r"scores must be a floating-point array.*int32",
    ),
    (
        "float where",
        GOOD_SCORES,
        GOOD_LABELS,
        {"where": np.ones((2, 3))},
        r"where must be a boolean mask.*float64",
    ),
    (
        "where shape",
        GOOD_SCORES,
        GOOD_LABELS,
        {"where": np.ones((3,), bool)},
        r"where shape \(3,\).*does not match",
    ),
    (
        "nan label",
        GOOD_SCORES,
        np.array([[1.0, np.nan, 1.0], [1, 1, 1]]),
        {},
        r"labels must be finite where valid",
    ),
    ("scalar scores", np.float64(1.0), np.float64(1.0), {}, r"scores must have a list axis"),
    (
        "reduction",
        GOOD_SCORES,
        GOOD_LABELS,
        {"reduction": "avg"},
        r"reduction must be one of none, sum, mean",
    ),
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(("case", "scores", "labels", "kwargs", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_arguments_are_named(framework, name, case, scores, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate(framework, name, scores, labels, grad=False, **kwargs)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_option_errors(framework):
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        evaluate(framework, "hybrid_loss", GOOD_SCORES, GOOD_LABELS, alpha=1.5, grad=False)
    with pytest.raises(ValueError, match=r"k must be an integer >= 1 or None, got 0"):
        evaluate(framework, "ndcg_at_k", GOOD_SCORES, GOOD_LABELS, k=0, grad=False)
    with pytest.raises(ValueError, match=r"tie_break must be a floating array shaped like scores"):
        evaluate(framework, "listmle_loss", GOOD_SCORES, GOOD_LABELS, tie_break=np.zeros((2, 2)), grad=False)
    pairs = (np.array([0, 5]), np.array([0, 1]), np.array([1, 2]))
    with pytest.raises(ValueError, match=r"pairs: list_index must lie in \[0, 2\), found \[0, 5\]"):
        evaluate(framework, "pairwise_pl_loss", GOOD_SCORES, GOOD_LABELS, pairs=pairs, grad=False)
    with pytest.raises(ValueError, match=r"pairs: j_index must be a 1-D integer array"):
        evaluate(
            framework,
            "pairwise_pl_loss",
            GOOD_SCORES,
            GOOD_LABELS,
            pairs=(np.array([0]), np.array([0]), np.array([1.0])),
            grad=False,
        )


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["listmle_loss", "hybrid_loss"])
def test_levels_errors(framework, name):
    labels = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 1.0]])
    with pytest.raises(
        ValueError,
        match=r"labels must be one of levels \(1.0, 2.0\) where valid; found 3.0 at index \(0, 2\)",
    ):
        evaluate(framework, name, GOOD_SCORES, labels, levels=(2, 1), grad=False)
    for levels, message in (
        ((1, 1), "levels must be distinct finite numbers, at least one, got"),
        ((), "levels must be distinct finite numbers, at least one, got"),
        ((1, float("nan")), "levels must be distinct finite numbers"),
        ("ab", "levels must be a sequence of numbers, got 'ab'"),
    ):
        with pytest.raises(ValueError, match=message):
            evaluate(framework, name, GOOD_SCORES, labels, levels=levels, grad=False)
    # A masked label outside the levels is no error: masked items are ignored entirely.
    where = np.array([[True, True, False], [True, True, True]])
    evaluate(framework, name, GOOD_SCORES, labels, where=where, levels=(1, 2), grad=False)


def test_labels_outside_levels_under_jit_give_that_list_nan():
    scores = jnp.array([[0.3, -1.0, 2.0], [0.5, 1.5, -0.2]])
    labels = jnp.array([[1.0, 2.0, 7.0], [2.0, 2.0, 1.0]])
    loss = jax.jit(lambda s, y: jax_ltr.listmle_loss(s, y, levels=(1, 2), reduction="none"))
    value = np.asarray(loss(scores, labels))
    assert np.isnan(value[0])
    assert value[1] == pytest.approx(float(jax_ltr.listmle_loss(scores[1], labels[1])))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_labels_under_jit_make_that_list_nan(name, bad):
    # Outside jit this is a ValueError (test_bad_arguments_are_named); under jit the list's
    # value is NaN, so every reduction shows it and the trainer's guard stops the run.
    scores = jnp.array([[0.3, -1.0, 2.0], [0.5, 1.5, -0.2], [0.1, 0.2, 0.3]])
    labels = jnp.array([[1.0, bad, 5.0], [5.0, 4.0, 1.0], [4.0, 1.0, bad]])
    where = jnp.array([[True, True, True], [True, True, True], [True, True, False]])
    fn = jax.jit(lambda s, y, w: getattr(jax_ltr, name)(s, y, where=w, reduction="none"))
    value = np.asarray(fn(scores, labels, where))
    assert np.isnan(value[0])
    assert np.isfinite(value[1:]).all()  # a bad label at a masked position is ignored
    mean = jax.jit(lambda s, y, w: getattr(jax_ltr, name)(s, y, where=w))(scores, labels, where)
    assert np.isnan(float(mean))


@pytest.mark.parametrize("name", ALL)
def test_a_jitted_function_may_close_over_labels_mask_and_pairs(name):
    # Concrete arrays captured by a jitted function still get checked, with NumPy, not traced.
    scores = np.array([[0.3, -1.0, 2.0], [0.5, 1.5, -0.2]])
    labels, where = (
        jnp.array([[1.0, 4.0, 5.0], [5.0, 4.0, 1.0]]),
        jnp.array([[True] * 3, [True, True, False]]),
    )
    kwargs = {}
    if name == "pairwise_pl_loss":
        kwargs["pairs"] = (jnp.array([0, 1]), jnp.array([0, 0]), jnp.array([1, 2]))
    if name in ("listmle_loss", "hybrid_loss"):
        kwargs["levels"] = (1, 4, 5)
    fn = getattr(jax_ltr, name)
    jitted = jax.jit(lambda s: fn(s, labels, where=where, **kwargs))
    expected = fn(scores, labels, where=where, **kwargs)
    assert float(expected) != 0.0
    np.testing.assert_allclose(jitted(scores), expected, rtol=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_empty_lists_give_zero(name):
    kwargs = {"levels": (1, 2)} if name in ("listmle_loss", "hybrid_loss") else {}
    value = getattr(jax_ltr, name)(jnp.zeros((3, 0)), jnp.zeros((3, 0)), reduction="none", **kwargs)
    np.testing.assert_array_equal(np.asarray(value), np.zeros(3))


def test_jax_only_options():
    with pytest.raises(ValueError, match=r"method must be one of auto, scan, associative, got 'loop'"):
        jax_ltr.listmle_loss(jnp.zeros(3), jnp.ones(3), method="loop")
    with pytest.raises(ValueError, match="give tie_break or key, not both"):
        jax_ltr.listmle_loss(jnp.zeros(3), jnp.ones(3), tie_break=jnp.zeros(3), key=jax.random.key(0))


def test_key_draws_a_reproducible_tie_order():
    scores = jnp.array([[0.3, -1.0, 2.0, 0.5, 1.5, -0.2]])
    labels = jnp.array([[2.0, 2.0, 2.0, 1.0, 1.0, 1.0]])
    key = jax.random.key(3)
    drawn = jax_ltr.listmle_loss(scores, labels, key=key)
    explicit = jax_ltr.listmle_loss(scores, labels, tie_break=jax.random.uniform(key, scores.shape))
    assert float(drawn) == float(explicit)
    others = {float(jax_ltr.listmle_loss(scores, labels, key=jax.random.key(k))) for k in range(20)}
    assert len(others) > 1  # different keys, different tie orders


def test_public_names_mirror_each_other():
    import torch_ltr

    jax_only = set(jax_ltr.__all__) - set(torch_ltr.__all__)
    assert set(torch_ltr.__all__) <= set(jax_ltr.__all__)
    assert jax_only == {"LISTMLE_METHODS", "clip_by_global_norm", "create_train_state"}
