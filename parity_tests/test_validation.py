"""Bad arguments get a ValueError naming the argument, in both frameworks alike."""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_ltr
from parity_tests import _frameworks
from parity_tests._frameworks import FRAMEWORKS, LOSSES, METRICS, NEEDED_OPTIONS

# Outside jit: the checks that look at values (non-finite labels, levels, pair ranges) raise.
evaluate = functools.partial(_frameworks.evaluate, jit=False)

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
@pytest.mark.parametrize("name", ALL)
def test_arguments_that_are_no_arrays_are_named(framework, name):
    # A string, an object, lists of unequal lengths: a ValueError naming the argument, not
    # the framework's own TypeError or RuntimeError from deep inside its array constructor.
    import torch

    import torch_ltr

    package = {"jax": jax_ltr, "torch": torch_ltr}[framework]
    fn = functools.partial(getattr(package, name), **NEEDED_OPTIONS.get(name, {}))
    scores, labels = np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32)
    if framework == "torch":
        scores, labels = torch.from_numpy(scores), torch.from_numpy(labels)
    bad = {"scores": "abc", "labels": [[1.0, 2.0], [1.0]], "where": object()}
    if "tie_break" in inspect.signature(fn.func).parameters:
        bad["tie_break"] = "random"
    for argument, value in bad.items():
        given = {"scores": scores, "labels": labels, argument: value}
        with pytest.raises(ValueError, match=rf"^{argument} must be an array \(or nested lists\) of numbers"):
            fn(given.pop("scores"), given.pop("labels"), **given)


def test_the_other_array_arguments_are_named_and_a_traced_value_keeps_jaxs_error():
    scores, labels = jnp.zeros((2, 3)), jnp.ones((2, 3))
    pairs = (np.array([0, 1]), np.array([0, 0]), np.array([1, 2]))
    with pytest.raises(ValueError, match=r"^scores must be an array \(or nested lists\) of numbers"):
        jax_ltr.hybrid_loss("abc", labels, pairs=pairs)
    with pytest.raises(ValueError, match=r"^order must be an array \(or nested lists\) of numbers"):
        jax_ltr.listmle_loss(scores, labels, order="abc")
    for bad in ("abc", [[1.0], [1.0, 2.0]]):
        with pytest.raises(ValueError, match=r"^labels must be an array \(or nested lists\) of numbers"):
            jax_ltr.label_order(bad)
    # label_order runs on the host: under jit, JAX's own error says why, not ours
    with pytest.raises(jax.errors.TracerArrayConversionError):
        jax.jit(jax_ltr.label_order)(labels)


NEGATIVE = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, 1.0]])
LOSS_OPTION_ERRORS = [
    ("softmax_loss", NEGATIVE, {}, r"labels must be >= 0 at valid positions, found -1.0 at index \(0, 1\)"),
    ("approx_ndcg_loss", NEGATIVE, {}, r"labels must lie in \[0, 64\] at valid positions .*, found -1.0"),
    (
        "approx_ndcg_loss",
        GOOD_LABELS,
        {"temperature": 0.0},
        r"temperature must be a finite number > 0, got 0",
    ),
    (
        "sigmoid_cross_entropy_loss",
        GOOD_LABELS * 2.0,
        {"threshold": None},
        r"labels must lie in \[0, 1\] at valid positions \(or give threshold=\), found 2.0",
    ),
    (
        "sigmoid_cross_entropy_loss",
        GOOD_LABELS,
        {"threshold": np.inf},
        r"threshold must be a finite number or None, got inf",
    ),
    ("lambda_loss", NEGATIVE, {}, r"labels must lie in \[0, 64\] at valid positions .*, found -1.0"),
    (
        "lambda_loss",
        GOOD_LABELS,
        {"weighting": "ndcg"},
        r"weighting must be one of ndcg_loss2\+\+, ndcg_loss2, dcg, label_diff, got 'ndcg'",
    ),
    ("lambda_loss", GOOD_LABELS, {"mu": -1.0}, r"mu must be a finite number >= 0, got -1.0"),
    ("lambda_loss", GOOD_LABELS, {"normalize": "yes"}, r"normalize must be True or False, got 'yes'"),
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(("name", "labels", "options", "message"), LOSS_OPTION_ERRORS)
def test_loss_options_and_label_ranges_are_checked(framework, name, labels, options, message):
    with pytest.raises(ValueError, match=message):
        evaluate(framework, name, GOOD_SCORES, labels, grad=False, **options)


def test_label_difference_weights_take_any_labels_and_gains_nan_under_jit():
    scores = jnp.array([[0.3, -1.0, 2.0], [0.5, 1.5, -0.2]])
    labels = jnp.array([[1.0, -2.0, 0.5], [3.0, 1.0, 0.0]])
    value = jax_ltr.lambda_loss(scores, labels, weighting="label_diff", reduction="none")
    assert np.isfinite(np.asarray(value)).all()
    value = jax.jit(lambda s, y: jax_ltr.lambda_loss(s, y, reduction="none"))(scores, labels)
    assert np.isnan(value[0]) and np.isfinite(value[1])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_option_errors(framework):
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\], got 1.5"):
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
@pytest.mark.parametrize(
    ("x", "where", "message"),
    [
        (np.arange(3), None, r"x must be a floating-point array with a list axis .*dtype (torch\.)?int"),
        (np.float32(1.0), None, r"x must be a floating-point array with a list axis .*shape \(\)"),
        (np.zeros((2, 3)), np.ones((2, 2), bool), r"where must be a boolean mask shaped like x \(2, 3\)"),
        (np.zeros((2, 3)), np.ones((2, 3), int), r"where must be a boolean mask .*dtype (torch\.)?int"),
    ],
    ids=["int x", "0-d x", "where shape", "int where"],
)
def test_suffix_logsumexp_arguments_are_named(framework, x, where, message):
    import torch

    import torch_ltr

    if framework == "jax":
        fn, wrap = jax_ltr.suffix_logsumexp, jnp.asarray
    else:
        fn, wrap = torch_ltr.suffix_logsumexp, torch.from_numpy
    with pytest.raises(ValueError, match=message):
        fn(wrap(np.asarray(x)), where=None if where is None else wrap(where))


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
def test_non_finite_labels_under_jit_make_that_list_nan(name):
    # Outside jit this is a ValueError (test_bad_arguments_are_named); under jit the list's
    # value is NaN, so every reduction shows it and the trainer's guard stops the run.
    scores = jnp.array([[0.3, -1.0, 2.0], [0.5, 1.5, -0.2], [0.1, 0.2, 0.3]])
    where = jnp.array([[True, True, True], [True, True, True], [True, True, False]])
    loss = functools.partial(getattr(jax_ltr, name), **NEEDED_OPTIONS.get(name, {}))
    per_list = jax.jit(lambda s, y, w: loss(s, y, where=w, reduction="none"))
    mean = jax.jit(lambda s, y, w: loss(s, y, where=w))
    for bad in (np.nan, np.inf, -np.inf):  # one compiled program each for all three
        labels = jnp.array([[1.0, bad, 5.0], [5.0, 4.0, 1.0], [4.0, 1.0, bad]])
        value = np.asarray(per_list(scores, labels, where))
        assert np.isnan(value[0]), bad
        assert np.isfinite(value[1:]).all(), bad  # a bad label at a masked position is ignored
        assert np.isnan(float(mean(scores, labels, where))), bad


@pytest.mark.parametrize("name", ALL)
def test_a_jitted_function_may_close_over_labels_mask_and_pairs(name):
    # Concrete arrays captured by a jitted function still get checked, with NumPy, not traced.
    scores = np.array([[0.3, -1.0, 2.0], [0.5, 1.5, -0.2]])
    labels, where = (
        jnp.array([[1.0, 4.0, 5.0], [5.0, 4.0, 1.0]]),
        jnp.array([[True] * 3, [True, True, False]]),
    )
    pairs = (jnp.array([0, 1]), jnp.array([0, 0]), jnp.array([1, 2])) if name == "pairwise_pl_loss" else None
    options = {"levels": (1, 4, 5)} if name in ("listmle_loss", "hybrid_loss") else {}
    fn = functools.partial(getattr(jax_ltr, name), **options, **NEEDED_OPTIONS.get(name, {}))

    def call(s, y, w, p):
        return fn(s, y, where=w) if p is None else fn(s, y, where=w, pairs=p)

    closed = jax.jit(lambda s: call(s, labels, where, pairs))
    expected = jax.jit(call)(scores, labels, where, pairs)  # the same arrays as arguments
    assert float(expected) != 0.0
    np.testing.assert_allclose(closed(scores), expected, rtol=1e-6)


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
    drawn = jax.jit(lambda k: jax_ltr.listmle_loss(scores, labels, key=k))
    # the same program with the draw given: a program compiled otherwise (op by op, or with
    # other constants folded) may round differently
    draw = jax.random.uniform
    given = jax.jit(lambda k: jax_ltr.listmle_loss(scores, labels, tie_break=draw(k, labels.shape)))
    assert float(drawn(key)) == float(given(key))
    others = {float(drawn(jax.random.key(k))) for k in range(20)}
    assert len(others) > 1  # different keys, different tie orders


def test_public_names_mirror_each_other():
    import torch_ltr

    jax_only = set(jax_ltr.__all__) - set(torch_ltr.__all__)
    assert set(torch_ltr.__all__) <= set(jax_ltr.__all__)
    # label_order: the host's order for JAX's ``order=``, which the PyTorch reference (which
    # sorts) does not take.
    assert jax_only == {"LISTMLE_METHODS", "clip_by_global_norm", "create_train_state", "label_order"}


def test_levels_are_checked_before_anything_is_computed(monkeypatch):
    from jax_ltr import _losses

    def must_not_run(*args, **kwargs):
        raise AssertionError("the loss was computed before its levels were checked")

    monkeypatch.setattr(_losses, "listmle_rows", must_not_run)
    monkeypatch.setattr(_losses, "to_columns", must_not_run)
    with pytest.raises(ValueError, match=r"labels must be one of levels \(1.0, 2.0\)"):
        jax_ltr.listmle_loss(jnp.zeros(3), jnp.array([1.0, 2.0, 3.0]), levels=(1, 2))


def test_level_places_are_a_permutation_for_any_labels():
    # Under jit a label outside the levels cannot be refused; the scatter that uses these
    # places promises unique indices, so they must stay a permutation even then.
    from jax_ltr._label_order import level_rank

    labels = jnp.array([[7.0, 5.0, 1.0, 7.0, 0.5, 3.0, np.inf], [2.0, 2.0, -3.0, 9.0, 1.0, 4.0, 4.0]])
    where = jnp.array([[True] * 7, [True, False, True, True, False, True, True]])
    places = np.asarray(jax.jit(level_rank, static_argnums=2)(labels, where, (1.0, 2.0, 3.0, 4.0, 5.0)))
    for row, valid in zip(places, np.asarray(where), strict=True):
        assert sorted(row) == list(range(len(row)))
        assert set(row[valid]) == set(range(valid.sum()))  # valid items take the first places


@pytest.mark.parametrize(
    "kind, levels", [("ratings", None), ("continuous", None), ("ratings", (1, 2, 3, 4, 5))]
)  # ratings without levels: the run-time counting pass; continuous: the sort
@pytest.mark.parametrize("tie_break", [False, True])
def test_every_order_puts_the_valid_items_first(monkeypatch, kind, levels, tie_break):
    from jax_ltr import _losses

    seen = []
    real = _losses.listmle_rows

    def record(rows, valid, count, arrangement, weights, method):
        ranked = _losses.to_columns(rows, arrangement).T  # each list in the order the loss takes
        seen.append((np.asarray(ranked), np.asarray(valid), np.asarray(count)))
        return real(rows, valid, count, arrangement, weights, method)

    monkeypatch.setattr(_losses, "listmle_rows", record)
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 6, (50, 12)) if kind == "ratings" else rng.normal(size=(50, 12))
    labels = labels.astype(np.float32)
    where = rng.random((50, 12)) < 0.6
    tie = rng.random((50, 12)).astype(np.float32) if tie_break else None
    scores = rng.normal(size=(50, 12)).astype(np.float32)
    jax_ltr.listmle_loss(scores, labels, where=where, levels=levels, tie_break=tie)
    ((ranked, valid, count),) = seen
    counts = where.sum(-1, keepdims=True)
    np.testing.assert_array_equal(valid, where)
    np.testing.assert_array_equal(count, counts[:, 0])  # the places valid items take
    ties = np.zeros(labels.shape) if tie is None else tie
    for row, (y, t, w) in enumerate(zip(labels, ties, where, strict=True)):
        order = sorted(np.flatnonzero(w), key=lambda i, y=y, t=t: (-y[i], t[i], i))  # a plain stable sort
        np.testing.assert_array_equal(ranked[row, : counts[row, 0]], scores[row, order])


def test_explicit_pairs_out_of_range_under_jit_give_nan():
    # Outside jit: a ValueError naming the index (test_option_errors). Under jit, JAX gathers
    # would clamp the index and count a pair nobody asked for; the value is NaN instead.
    scores, labels = jnp.array([[0.3, -1.0, 2.0], [0.5, 1.5, -0.2]]), jnp.array([[1.0, 2.0, 3.0]] * 2)
    loss = jax.jit(lambda s, p: jax_ltr.pairwise_pl_loss(s, labels, pairs=p, reduction="none"))
    good = (jnp.array([0, 1]), jnp.array([0, 1]), jnp.array([2, 2]))
    assert np.isfinite(np.asarray(loss(scores, good))).all()
    for bad in (
        (jnp.array([0, 2]), jnp.array([0, 1]), jnp.array([2, 2])),
        (jnp.array([0, 1]), jnp.array([0, -1]), jnp.array([2, 2])),
        (jnp.array([0, 1]), jnp.array([0, 1]), jnp.array([2, 3])),
    ):
        assert np.isnan(np.asarray(loss(scores, bad))).all()


def test_mean_counts_do_not_wrap_around_at_int32():
    from jax_ltr._utils import safe_reduce

    # 3e9 counted pairs: an int32 count wraps to a negative number and the mean comes out 3.0.
    mean = safe_reduce(jnp.ones(3), jnp.full(3, 10**9, jnp.int32), "mean")
    assert float(mean) == pytest.approx(1e-9, rel=1e-6)
    scores, labels = jnp.zeros((2, 20)), jnp.tile(jnp.arange(20.0), (2, 1))
    _, count = jax_ltr._sweeps.all_pairs_loss(scores, labels, jnp.ones((2, 20), bool), (), 8, None)
    assert count.dtype == scores.dtype  # per-list pair counts too: L**2 / 2 passes 2**31 at L = 65,536


def test_lambda_loss_keeps_float32_with_x64_on():
    # A float64 constant in the pair weights would promote the sweep's float32 carry.
    scores = np.random.default_rng(0).normal(size=(3, 20)).astype(np.float32)
    labels = np.tile(np.arange(20.0, dtype=np.float32) % 5, (3, 1))
    with jax.enable_x64(True):
        for weighting in ("ndcg_loss2++", "label_diff"):
            # Traced, not run: the dtypes are fixed as the loss and its gradient are traced.
            value, grad = jax.eval_shape(
                jax.value_and_grad(lambda s, w=weighting: jax_ltr.lambda_loss(s, labels, weighting=w)),
                jnp.asarray(scores),
            )
            assert value.dtype == grad.dtype == jnp.float32


def test_an_order_that_is_not_the_label_order_is_refused_or_nan():
    labels = jnp.array([[3.0, 1.0, 2.0, 0.0], [1.0, 1.0, 2.0, 5.0]])
    where = jnp.array([[True, True, True, False], [True, True, True, True]])
    scores = jnp.zeros((2, 4))
    good = jax_ltr.label_order(labels, where)
    assert good.tolist() == [[0, 2, 1, 3], [3, 2, 0, 1]]
    bad = {
        "labels out of order": np.array([[2, 0, 1, 3], [3, 2, 0, 1]]),
        "an index repeated": np.array([[0, 2, 2, 3], [3, 2, 0, 1]]),
        "an index out of range": np.array([[0, 2, 1, 4], [3, 2, 0, 1]]),
        "an invalid item first": np.array([[3, 0, 2, 1], [3, 2, 0, 1]]),
    }
    for what, order in bad.items():
        with pytest.raises(ValueError, match="order must be each list's label order"):
            jax_ltr.listmle_loss(scores, labels, where=where, order=order)
        # Under jit the list whose order is wrong is NaN, the other one is not.
        per_list = jax.jit(
            lambda s, o: jax_ltr.listmle_loss(s, labels, where=where, order=o, reduction="none")
        )(scores, order)
        assert np.isnan(per_list[0]) and np.isfinite(per_list[1]), what
    with pytest.raises(ValueError, match="without tie_break, key or levels"):
        jax_ltr.listmle_loss(scores, labels, where=where, order=good, tie_break=jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="order must be an integer array shaped like labels"):
        jax_ltr.listmle_loss(scores, labels, where=where, order=good[:, :3])
    with pytest.raises(ValueError, match="order must be an integer array shaped like labels"):
        jax_ltr.listmle_loss(scores, labels, where=where, order=good.astype(np.float32))


@pytest.mark.parametrize("name", ["listmle_loss", "pairwise_pl_loss", "pointwise_mse_loss", "mrr"])
def test_64_bit_integer_labels_keep_their_values(name):
    # Without x64 JAX would store these labels in 32 bits: 2**31 wraps to -2**31 and 2**32 + 3
    # to 3. Both frameworks see them as float32, alike; a given label order agrees with them.
    import torch

    import torch_ltr

    scores = np.array([[0.0, 1.0, 2.0], [0.5, -1.0, 0.25]], np.float32)
    labels = np.array([[2**31, 1, 0], [2**32 + 3, 2**40, 5]], np.int64)
    ours = getattr(jax_ltr, name)(scores, labels, reduction="none")
    theirs = getattr(torch_ltr, name)(torch.from_numpy(scores), torch.from_numpy(labels), reduction="none")
    as_float = getattr(jax_ltr, name)(scores, labels.astype(np.float32), reduction="none")
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(as_float))
    if name == "listmle_loss":
        given = jax_ltr.listmle_loss(scores, labels, order=jax_ltr.label_order(labels), reduction="none")
        np.testing.assert_array_equal(np.asarray(given), np.asarray(ours))
    if name == "mrr":
        metrics = jax_ltr.ranking_metrics(scores, labels, top_k=())
        np.testing.assert_array_equal(np.asarray(metrics["mrr"]), np.asarray(ours))


def test_a_traced_alpha_outside_zero_and_one_makes_the_hybrid_nan():
    # A concrete alpha outside [0, 1] is refused; a traced one (a schedule under jit) cannot be.
    scores, labels = jnp.array([[0.0, 1.0, 2.0]]), jnp.array([[2.0, 1.0, 0.0]])
    hybrid = jax.jit(lambda alpha: jax_ltr.hybrid_loss(scores, labels, alpha=alpha))
    inside = [float(hybrid(alpha)) for alpha in (0.0, 0.3, 1.0)]
    assert np.isfinite(inside).all()
    assert inside[1] == pytest.approx(float(jax_ltr.hybrid_loss(scores, labels, alpha=0.3)), rel=1e-6)
    assert all(np.isnan(float(hybrid(alpha))) for alpha in (-0.1, 1.5, np.nan))


@pytest.mark.parametrize(
    ("labels", "where", "message"),
    [
        (np.float32(1.0), None, r"labels must be a numeric array with a list axis .*shape \(\)"),
        (np.array([[True, False]]), None, r"labels must be a numeric array .*dtype bool"),
        (
            np.ones((2, 3)),
            np.ones((2, 3), int),
            r"where must be a boolean mask shaped like labels .*dtype int",
        ),
        (np.ones((2, 3)), np.ones((2, 2), bool), r"where must be a boolean mask shaped like labels \(2, 3\)"),
    ],
    ids=["0-d labels", "bool labels", "int where", "where shape"],
)
def test_label_order_names_a_bad_argument_as_the_losses_do(labels, where, message):
    with pytest.raises(ValueError, match=message):
        jax_ltr.label_order(labels, where)


def _model_pair(kind: str):
    """The JAX and PyTorch scorers of ``kind`` over 5 users and 7 items, with JAX's weights."""
    from jax_ltr._model import MODEL_CLASSES as JAX_MODELS
    from torch_ltr._model import MODEL_CLASSES as TORCH_MODELS

    options = {"embedding_dim": 4} | ({"history_length": 3, "num_heads": 2} if kind == "sequence" else {})
    return JAX_MODELS[kind](num_users=5, num_items=7, **options), TORCH_MODELS[kind](5, 7, **options)


# Each model's inputs with one id outside its table, the argument named, and the bad value.
ID_CASES = [
    ("mlp", ([0, 5], [[1, 2], [6, 0]]), "user_ids", 5),
    ("mlp", ([0, 4], [[1, 2], [-1, 0]]), "item_ids", -1),
    ("dot", ([0, 4], [[1, 2], [6, 7]]), "item_ids", 7),
    ("dot", ([2**32, 4], [[1, 2], [6, 0]]), "user_ids", 2**32),
    ("sequence", ([[0, 2, 7]], [[True] * 3], [[[1]] * 3], [[2]]), "history", 7),
    ("sequence", ([[0, 2, 6]], [[True] * 3], [[[1], [9], [1]]], [[2]]), "targets", 9),
    ("sequence", ([[0, 2, 6]], [[True] * 3], [[[1]] * 3], [[-2]]), "negatives", -2),
]


@pytest.mark.parametrize(("kind", "inputs", "name", "bad"), ID_CASES)
def test_the_models_refuse_ids_outside_their_tables(kind, inputs, name, bad):
    """An id outside [0, rows) is refused by name outside jit, where JAX would read NaN past
    the end and count a negative id from the end (PyTorch raises past the end, unnamed);
    under jit JAX reads it its way."""
    jax_model, torch_model = _model_pair(kind)
    mask = (np.array(inputs[1]),) if kind == "sequence" else ()
    good = [np.clip(np.array(x), 0, 4) for x in inputs]
    if kind == "sequence":
        good[1] = mask[0]
    params = jax_model.init(jax.random.key(0), *good)["params"]
    arrays = [np.array(x) for x in inputs]
    with pytest.raises(
        ValueError, match=rf"^{name} must lie in \[0, {5 if name == 'user_ids' else 7}\), found {bad} at"
    ):
        jax_model.apply({"params": params}, *arrays)
    if 0 <= bad < 2**31:
        import torch

        with pytest.raises(IndexError):
            torch_model(
                *[torch.from_numpy(x).long() if x.dtype != bool else torch.from_numpy(x) for x in arrays]
            )
        jitted = jax.jit(lambda p, *xs: jax_model.apply({"params": p}, *xs))(params, *arrays)
        assert jitted.shape == jax_model.apply({"params": params}, *good).shape


def test_the_models_refuse_ids_that_are_not_integers():
    jax_model, _ = _model_pair("dot")
    params = jax_model.init(jax.random.key(0), np.array([0]), np.array([[1]]))["params"]
    with pytest.raises(ValueError, match=r"^item_ids must be integer ids, got dtype float32"):
        jax_model.apply({"params": params}, np.array([0]), np.array([[1.0]], np.float32))
    with pytest.raises(ValueError, match=r"^user_ids must lie in \[0, 5\), found 9 at index \(0,\)"):
        jax_model.apply({"params": params}, np.array([9]), method=jax_model.catalog_scores)
