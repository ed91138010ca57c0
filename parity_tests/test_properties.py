"""Invariants every loss must satisfy, in both frameworks, float64."""

from __future__ import annotations

import numpy as np
import pytest

from parity_tests._frameworks import FRAMEWORKS, LOSSES, RANKING_LOSSES, evaluate, evaluate_each

CASES = [(fw, name) for fw in FRAMEWORKS for name in LOSSES]
# Shift invariance (and so gradients summing to 0 per list) holds for ranking losses only.
RANKING_CASES = [(fw, name) for fw in FRAMEWORKS for name in RANKING_LOSSES]


def distinct_lists(rng, batch=4, length=9):
    scores = rng.normal(0, 2, (batch, length))
    labels = np.stack([rng.permutation(length) for _ in range(batch)]).astype(np.float64)  # no ties
    return scores, labels


@pytest.mark.parametrize(("framework", "name"), RANKING_CASES)
def test_adding_a_constant_per_list_changes_nothing(framework, name):
    scores, labels = distinct_lists(np.random.default_rng(1))
    shift = np.array([[-30.0], [0.5], [7.0], [100.0]])
    base, base_grad = evaluate(framework, name, scores, labels, reduction="none")
    shifted, shifted_grad = evaluate(framework, name, scores + shift, labels, reduction="none")
    np.testing.assert_allclose(shifted, base, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(shifted_grad, base_grad, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(("framework", "name"), CASES)
def test_permuting_items_with_their_labels_changes_nothing(framework, name):
    rng = np.random.default_rng(2)
    scores, labels = distinct_lists(rng)
    perm = rng.permutation(scores.shape[1])
    base, base_grad = evaluate(framework, name, scores, labels, reduction="none")
    moved, moved_grad = evaluate(framework, name, scores[:, perm], labels[:, perm], reduction="none")
    np.testing.assert_allclose(moved, base, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(moved_grad, base_grad[:, perm], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("framework", "name"), CASES)
def test_padding_width_changes_no_loss_and_no_gradient(framework, name):
    rng = np.random.default_rng(3)
    scores = rng.normal(0, 2, (3, 6))
    labels = rng.integers(1, 6, (3, 6)).astype(np.float64)
    where = np.ones((3, 6), bool)
    where[1, 4:] = False
    pad = 10
    wide_scores = np.concatenate([scores, np.full((3, pad), np.nan)], axis=1)
    wide_labels = np.concatenate([labels, np.full((3, pad), np.inf)], axis=1)
    wide_where = np.concatenate([where, np.zeros((3, pad), bool)], axis=1)
    reductions = ("none", "mean")  # "mean" counts the lists; "sum" adds "none"
    base = evaluate_each(framework, name, scores, labels, where=where, reductions=reductions)
    wide = evaluate_each(framework, name, wide_scores, wide_labels, where=wide_where, reductions=reductions)
    for reduction in reductions:
        (value, grad), (wide_value, wide_grad) = base[reduction], wide[reduction]
        np.testing.assert_allclose(wide_value, value, rtol=1e-12, atol=1e-12, err_msg=reduction)
        np.testing.assert_allclose(wide_grad[:, :6], grad, rtol=1e-12, atol=1e-12, err_msg=reduction)
        assert (wide_grad[:, 6:] == 0).all(), reduction


@pytest.mark.parametrize(("framework", "name"), CASES)
def test_a_masked_item_equals_a_dropped_item(framework, name):
    rng = np.random.default_rng(4)
    scores = rng.normal(0, 2, 7)
    labels = rng.integers(1, 6, 7).astype(np.float64)
    for k in range(7):
        where = np.arange(7) != k
        masked, masked_grad = evaluate(framework, name, scores, labels, where=where, reduction="sum")
        dropped, dropped_grad = evaluate(framework, name, scores[where], labels[where], reduction="sum")
        assert masked == pytest.approx(dropped, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(masked_grad[where], dropped_grad, rtol=1e-12, atol=1e-12)
        assert masked_grad[k] == 0


@pytest.mark.parametrize(("framework", "name"), RANKING_CASES)
def test_gradient_of_each_list_sums_to_zero(framework, name):
    rng = np.random.default_rng(5)
    scores = rng.normal(0, 3, (5, 20))
    labels = rng.integers(1, 6, (5, 20)).astype(np.float64)
    where = rng.random((5, 20)) < 0.8
    _, grad = evaluate(framework, name, scores, labels, where=where, reduction="sum")
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-12)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_sum_of_none_is_sum(framework):
    rng = np.random.default_rng(6)
    scores, labels = rng.normal(size=(4, 8)), rng.integers(1, 6, (4, 8)).astype(np.float64)
    for name in (*LOSSES, "ndcg_at_k", "mrr", "average_precision", "recall_at_k"):
        each = evaluate_each(framework, name, scores, labels, reductions=("none", "sum"), grad=False)
        (per_list, _), (total, _) = each["none"], each["sum"]
        assert per_list.shape == (4,)
        assert per_list.sum() == pytest.approx(total, rel=1e-12)
