"""Baselines and paired statistics: the formulas, on data small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ltr_common import baselines
from ltr_common.lists import Lists
from ltr_common.stats import paired_difference


def lists_of(rows):
    """Lists from ``{user: [(item, rating), ...]}``."""
    users = sorted(rows)
    lengths = [len(rows[u]) for u in users]
    items = np.array([i for u in users for i, _ in rows[u]], np.int32)
    labels = np.array([r for u in users for _, r in rows[u]], np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    zeros = np.zeros(len(items), np.int64)
    return Lists(np.array(users, np.int32), offsets, items, labels, zeros, zeros)


def test_item_mean_is_shrunk_toward_the_global_mean():
    train = lists_of({0: [(0, 5.0), (1, 1.0)], 1: [(0, 3.0)]})  # global mean 3
    np.testing.assert_allclose(baselines.item_mean(train, 3, prior=0.0), [4.0, 1.0, 3.0])
    np.testing.assert_allclose(baselines.item_mean(train, 3, prior=2.0), [(8 + 6) / 4, (1 + 6) / 3, 3.0])
    np.testing.assert_allclose(baselines.popularity(train, 3), [2, 1, 0])


def test_rating_mf_fits_a_low_rank_rating_matrix():
    rng = np.random.default_rng(0)
    users, items, rank = 40, 30, 2
    truth = (
        3
        + rng.normal(0, 0.5, items)[None, :]
        + rng.normal(size=(users, rank)) @ rng.normal(size=(rank, items))
    )
    rated = rng.random((users, items)) < 0.6
    rows = {u: [(i, float(truth[u, i])) for i in np.flatnonzero(rated[u])] for u in range(users)}
    score = baselines.rating_mf(lists_of(rows), users, items, dim=4, reg=0.1, iterations=30)
    predicted = score(np.arange(users)[:, None], np.arange(items)[None, :])
    # Scores leave out the user's mean and bias: compare each user's centred row.
    centred = [np.corrcoef(predicted[u], truth[u])[0, 1] for u in range(users)]
    assert np.median(centred) > 0.95
    # One pair at a time gives the same numbers as the whole catalog (its matrix product).
    u, i = np.array([[3], [7]]), np.array([[5, 2], [1, 0]])
    np.testing.assert_allclose(score(u, i), predicted[u, i], rtol=1e-10)


def test_paired_difference_leaves_out_what_does_not_count():
    mean, se, n = paired_difference([0.5, np.nan, 0.9, 0.2], [0.4, 0.3, 0.6, np.nan])
    assert n == 2 and mean == pytest.approx(0.2)
    assert se == pytest.approx(np.std([0.1, 0.3], ddof=1) / np.sqrt(2))
    with pytest.raises(ValueError, match="paired lists must match"):
        paired_difference([1.0], [1.0, 2.0])
