"""The synthetic MovieLens-shaped generator: valid, skewed, deterministic, split like the real data."""

from __future__ import annotations

import numpy as np
import pytest

from ltr_common import temporal_split
from ltr_common.synthetic import synthetic_ratings


@pytest.fixture(scope="module")
def ratings():
    return synthetic_ratings(300, 3_000, median_ratings=40, max_ratings=2_500, seed=3)


def test_shape_ranges_and_skew(ratings):
    per_user = np.bincount(ratings.users)
    assert ratings.num_users == 300 and per_user.min() >= 20 and per_user.max() == 2_500
    assert set(np.unique(ratings.ratings)) <= {1, 2, 3, 4, 5} and len(np.unique(ratings.ratings)) == 5
    per_item = np.sort(np.bincount(ratings.items))[::-1]
    assert per_item[: len(per_item) // 100].sum() > 0.1 * per_item.sum()  # top 1% of items: > 10%
    assert per_user.mean() > 1.5 * np.median(per_user)  # activity right-skewed, as in ML-100K (1.6x)
    # Timestamps increase within each user's ratings, in row order.
    for user in range(5):
        assert np.all(np.diff(ratings.timestamps[ratings.users == user]) > 0)


def test_deterministic_in_seed(ratings):
    again = synthetic_ratings(300, 3_000, median_ratings=40, max_ratings=2_500, seed=3)
    other = synthetic_ratings(300, 3_000, median_ratings=40, max_ratings=2_500, seed=4)
    np.testing.assert_array_equal(again.items, ratings.items)
    np.testing.assert_array_equal(again.ratings, ratings.ratings)
    assert len(other) != len(ratings) or not np.array_equal(other.items, ratings.items)


def test_splits_like_movielens(ratings):
    split = temporal_split(ratings, max_list_size=10_000)
    assert len(split.test) == 300 and (split.test.lengths == 10).all()
    assert split.train.lengths.max() == 2_500 - 20


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"max_ratings must lie in \[min_ratings, num_items\] = \[20, 100\]"):
        synthetic_ratings(10, 100, max_ratings=500)
    with pytest.raises(ValueError, match="num_users must be an integer >= 1, got 0"):
        synthetic_ratings(0)
