"""The retrieval peers (``ltr_common.baselines``): EASE's closed form, item-kNN's shrunk
neighbours, ALS's fold-in, and that each scores a user from the history it is shown."""

from __future__ import annotations

import numpy as np

import jax_ltr
from ltr_common import baselines
from ltr_common.lists import concatenate_by_user
from tests._small import small_data


def _matrix(lists, split):
    return baselines.interactions(lists, split.num_users, split.num_items).toarray().astype(np.float64)


def test_ease_is_the_ridge_regression_of_each_item_on_the_others():
    _, split = small_data()
    l2 = 30.0
    ease = baselines.ease(split.train, split.num_users, split.num_items, l2=l2)
    x = _matrix(split.train, split)
    users = np.arange(split.num_users)
    scores = ease.score(users, split.train)
    # Column j of B minimises |x_j - X b|^2 + l2 |b|^2 with b_j = 0: the normal equations
    # (X'X + l2 I) b = X'x_j hold on every row but j.
    weights = np.linalg.lstsq(x, scores, rcond=None)[0]
    j = 3
    b = weights[:, j]
    residual = (x.T @ x + l2 * np.eye(split.num_items)) @ b - x.T @ x[:, j]
    assert abs(b[j]) < 1e-8
    assert np.abs(np.delete(residual, j)).max() < 1e-6 * np.abs(x.T @ x[:, j]).max()


def test_item_knn_keeps_each_items_most_similar_neighbours():
    _, split = small_data()
    knn = baselines.item_knn(split.train, split.num_users, split.num_items, neighbours=5, shrinkage=10.0)
    x = _matrix(split.train, split)
    common = x.T @ x
    norms = np.sqrt(np.diag(common))
    similarity = common / (np.outer(norms, norms) + 10.0 + 1e-12)
    np.fill_diagonal(similarity, 0.0)
    one_hot = concatenate_by_user([split.train], split.num_users)  # any history: read through
    scores = knn.score(np.arange(split.num_users), one_hot)
    recovered = np.linalg.lstsq(x, scores, rcond=None)[0]
    for item in (0, 7, 123):
        kept = np.flatnonzero(np.abs(recovered[:, item]) > 1e-9)
        assert len(kept) >= 5 and set(np.argsort(-similarity[:, item])[:5]) <= set(kept)
        np.testing.assert_allclose(recovered[kept, item], similarity[kept, item], rtol=1e-6, atol=1e-9)


def test_als_folds_in_the_history_it_is_shown():
    _, split = small_data()
    als = baselines.implicit_als(
        split.train, split.num_users, split.num_items, factors=8, regularization=1.0, alpha=1.0, seed=0
    )
    users = np.arange(split.num_users)
    train_only = als.score(users, split.history("validation"))
    with_validation = als.score(users, split.history("test"))
    assert not np.allclose(train_only, with_validation)  # the validation ratings moved the users
    assert np.isfinite(with_validation).all()


def test_a_history_scorer_reads_the_history_column_it_is_given():
    from ltr_common.config import for_task
    from ltr_common.tasks import make_task

    _, split = small_data()
    task = make_task(for_task("retrieve", negatives=5), split)
    ease = baselines.ScoreScorer(
        baselines.ease(split.train, split.num_users, split.num_items, l2=30.0),
        jax_ltr,
        top_k=(10,),
        num_items=split.num_items,
    )
    both = task.evaluate(ease, "test")["ndcg@10"]
    train_only = task.evaluate(ease, "test", history="train")["ndcg@10"]
    assert both != train_only
