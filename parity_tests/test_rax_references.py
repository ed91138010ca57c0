"""Rax (Google's JAX learning-to-rank library) as a float64 reference where it defines the
same loss: softmax cross-entropy, pointwise sigmoid cross-entropy, ApproxNDCG and LambdaLoss.

Where the definitions differ, the inputs avoid the difference, and it is stated here (and
ApproxNDCG below: Rax's ``-NDCG`` against our ``1 - NDCG``):

* ``rax.softmax_loss`` with ``label_fn=rax.utils.normalize_probabilities`` is ours on every
  list whose valid labels sum to more than 0; a list with none relevant gets a uniform
  target distribution in Rax, and contributes 0 (and is not counted by "mean") here. Rax's
  "mean" also counts such lists. Compared: per-list values and gradients on lists with a
  relevant item.
* ``rax.pointwise_sigmoid_loss`` clips labels into [0, 1] and returns per-item values; ours
  refuses labels outside [0, 1] (or thresholds them with ``threshold=``) and sums per list.
  Compared: per-list sums of Rax's per-item values on the thresholded targets.
* ``rax.pairwise_logistic_loss`` with a DCG lambdaweight multiplies the weights by the padded
  list width; ``lambda_loss`` by the number of valid items, so that padding changes nothing.
  Compared: each list's valid items alone, where the two are the same number.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rax  # in the test extra

from parity_tests._frameworks import FRAMEWORKS, evaluate


def batch(seed: int):
    rng = np.random.default_rng(seed)
    shape = (24, 30)
    scores = rng.normal(0.0, 3.0, shape)
    labels = rng.integers(0, 5, shape).astype(np.float64)
    where = rng.random(shape) < 0.8
    where[:, 0] = True
    labels[:, 0] = np.maximum(labels[:, 0], 1.0)  # every list has a relevant valid item
    return np.where(where, scores, np.nan), np.where(where, labels, np.nan), where


def rax_values_and_grads(fn, scores, labels, where):
    """Per-list values and d sum / d scores of a Rax loss, float64."""
    with jax.enable_x64(True):
        s, y, w = (
            jnp.asarray(x) for x in (np.where(where, scores, 0.0), np.where(where, labels, 0.0), where)
        )
        value, vjp = jax.vjp(lambda s: fn(s, y, w), s)
        return np.asarray(value), np.asarray(vjp(jnp.ones_like(value))[0])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_softmax_loss_equals_rax(framework):
    scores, labels, where = batch(21)
    theirs = rax_values_and_grads(
        lambda s, y, w: rax.softmax_loss(
            s, y, where=w, label_fn=rax.utils.normalize_probabilities, reduce_fn=None
        ),
        scores,
        labels,
        where,
    )
    ours = evaluate(framework, "softmax_loss", scores, labels, where=where, reduction="none")
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_sigmoid_cross_entropy_equals_rax(framework):
    scores, labels, where = batch(22)
    targets = np.where(where, (labels >= 3.0).astype(np.float64), 0.0)
    theirs = rax_values_and_grads(
        lambda s, t, w: jnp.sum(
            jnp.where(w, rax.pointwise_sigmoid_loss(s, t, where=w, reduce_fn=None), 0.0), axis=-1
        ),
        scores,
        targets,
        where,
    )
    ours = evaluate(
        framework, "sigmoid_cross_entropy_loss", scores, labels, where=where, threshold=3.0, reduction="none"
    )
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def rax_approx_ndcg(temperature):
    """What ``rax.approx_t12n(rax.ndcg_metric, temperature)`` computes: ``rax.ndcg_metric`` with
    sigmoid-approximated ranks and cut-off. (``approx_t12n`` itself needs ``jax.util.wraps``,
    which JAX 0.10 no longer has, so the metric is called with the same arguments directly.)"""

    def step(x):
        return jax.nn.sigmoid(x / temperature)

    rank_fn = functools.partial(rax.utils.approx_ranks, step_fn=step)
    cutoff_fn = functools.partial(rax.utils.approx_cutoff, step_fn=step)
    return lambda s, y, w: (
        -rax.ndcg_metric(s, y, where=w, rank_fn=rank_fn, cutoff_fn=cutoff_fn, reduce_fn=None)
    )


@pytest.mark.parametrize("temperature", [1.0, 0.3])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_approx_ndcg_equals_rax(framework, temperature):
    # Rax's loss is -NDCG, ours 1 - NDCG: the values differ by 1 on every list (each has a
    # relevant item here), the gradients not at all.
    scores, labels, where = batch(23)
    value, grad = rax_values_and_grads(rax_approx_ndcg(temperature), scores, labels, where)
    ours = evaluate(
        framework, "approx_ndcg_loss", scores, labels, where=where, temperature=temperature, reduction="none"
    )
    np.testing.assert_allclose(ours[0], 1.0 + value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours[1], grad, rtol=1e-12, atol=1e-12)


def rax_lambdaweight(weighting, mu):
    """The Rax lambdaweight function that defines ``lambda_loss``'s ``weighting``."""
    dcg = functools.partial(rax.dcg_lambdaweight, normalize=True)
    dcg2 = functools.partial(rax.dcg2_lambdaweight, normalize=True)
    return {
        "ndcg_loss2++": lambda *args, **kwargs: dcg(*args, **kwargs) + mu * dcg2(*args, **kwargs),
        "ndcg_loss2": dcg2,
        "dcg": dcg,
        "label_diff": rax.labeldiff_lambdaweight,
    }[weighting]


def lambda_batch():
    """24 lists of width 30 with exactly 24 valid items each, at random places, and the same
    lists compacted to [24, 24]: the width Rax sees equals the valid count."""
    rng = np.random.default_rng(24)
    shape, valid = (24, 30), 24
    compact_scores = rng.normal(0.0, 3.0, (shape[0], valid))
    compact_labels = rng.integers(0, 5, (shape[0], valid)).astype(np.float64)
    where = np.zeros(shape, bool)
    for row in where:
        row[rng.choice(shape[1], valid, replace=False)] = True
    scores, labels = np.full(shape, np.nan), np.full(shape, np.nan)
    scores[where], labels[where] = compact_scores.ravel(), compact_labels.ravel()
    return (scores, labels, where), (compact_scores, compact_labels)


@functools.cache
def rax_lambda_loss(weighting, mu):
    """Rax's per-list sums and their gradients, and its "mean" value and gradient, on
    ``lambda_batch``'s compacted lists."""
    lambdaweight = rax_lambdaweight(weighting, mu)
    _, (scores, labels) = lambda_batch()
    full = np.ones(scores.shape, bool)

    def loss(reduce_fn):
        return lambda s, y, w: rax.pairwise_logistic_loss(
            s, y, where=w, lambdaweight_fn=lambdaweight, reduce_fn=reduce_fn
        )

    per_list = rax_values_and_grads(lambda s, y, w: loss(None)(s, y, w).sum(-1), scores, labels, full)
    return per_list, rax_values_and_grads(loss(jnp.mean), scores, labels, full)


@pytest.mark.parametrize("weighting", ["ndcg_loss2++", "ndcg_loss2", "dcg", "label_diff"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_lambda_loss_equals_rax(framework, weighting):
    # Rax scales its DCG weights by the padded list width, ours by the valid items: Rax gets
    # the lists compacted to their valid items (width = valid count), ours padded at random
    # places, and then the two agree exactly. "mean": Rax's jnp.mean over the valid pairs
    # with different labels.
    (scores, labels, where), compact = lambda_batch()
    (value, grad), mean = rax_lambda_loss(weighting, 3.0)
    options = {"weighting": weighting, "mu": 3.0}
    ours = evaluate(framework, "lambda_loss", scores, labels, where=where, reduction="none", **options)
    np.testing.assert_allclose(ours[0], value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours[1][where], grad.ravel(), rtol=1e-12, atol=1e-12)
    assert (ours[1][~where] == 0).all()
    ours = evaluate(framework, "lambda_loss", *compact, reduction="mean", **options)
    for a, b in zip(ours, mean, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
