"""The real MovieLens 100K through the pipeline: counts, split sizes and the time protocol."""

from __future__ import annotations

import numpy as np
import pytest

from ltr_common.lists import MAX_LIST_SIZE, temporal_split


def test_counts(movielens):
    assert len(movielens) == 100_000
    assert movielens.num_users == 943
    assert movielens.num_items == 1_682
    assert set(np.unique(movielens.ratings)) == {1, 2, 3, 4, 5}
    # Raw ids in ML-100K are 1..943 and 1..1682: the remap is the shift by one.
    np.testing.assert_array_equal(movielens.user_raw_ids, np.arange(1, 944))
    np.testing.assert_array_equal(movielens.item_raw_ids, np.arange(1, 1683))


@pytest.mark.parametrize("max_list_size", [None, 200])
def test_split_sizes(movielens, max_list_size):
    given = {} if max_list_size is None else {"max_list_size": max_list_size}
    split = temporal_split(movielens, **given)
    kept = MAX_LIST_SIZE if max_list_size is None else max_list_size
    per_user = np.bincount(movielens.users, minlength=943)
    assert len(split.test) == len(split.validation) == 943
    assert (split.test.lengths == 10).all() and (split.validation.lengths == 10).all()
    # Training: the remainder, the newest `kept`; users with exactly 20 ratings have none.
    expected_train = np.minimum(per_user - 20, kept)
    np.testing.assert_array_equal(split.train.lengths, expected_train[expected_train > 0])
    np.testing.assert_array_equal(split.train.users, np.flatnonzero(expected_train > 0))
    assert split.counts["users with no training list (cold: validation/test only)"] == 32
    assert split.counts["users with a 1-rating training list (no order to learn)"] == 24
    truncated = split.counts["users whose training list was truncated to max_list_size"]
    assert truncated == (per_user > 20 + kept).sum()
    # ML-100K's longest history (737 ratings) fits the default; 200 truncates 124 users.
    assert truncated == (0 if max_list_size is None else 124)


def test_no_rating_in_two_splits(movielens_split):
    rows = [part.rows for part in (movielens_split.train, movielens_split.validation, movielens_split.test)]
    everything = np.concatenate(rows)
    assert len(np.unique(everything)) == len(everything)


def test_labels_are_the_ratings(movielens, movielens_split):
    for part in (movielens_split.train, movielens_split.validation, movielens_split.test):
        assert part.labels.dtype == np.float32
        np.testing.assert_array_equal(part.labels, movielens.ratings[part.rows])
        np.testing.assert_array_equal(part.items, movielens.items[part.rows])


def test_test_is_latest_in_time(movielens_split):
    def per_user(part, reduce):
        out = {}
        for k, user in enumerate(part.users):
            lo, hi = part.offsets[k], part.offsets[k + 1]
            out[int(user)] = reduce(part.timestamps[lo:hi])
        return out

    train_last = per_user(movielens_split.train, np.max)
    val_first, val_last = (
        per_user(movielens_split.validation, np.min),
        per_user(movielens_split.validation, np.max),
    )
    test_first = per_user(movielens_split.test, np.min)
    for user, first in test_first.items():
        assert first >= val_last[user]
        assert val_first[user] >= train_last.get(user, -1)


def test_lists_are_in_time_order(movielens_split):
    for part in (movielens_split.train, movielens_split.test):
        steps = np.diff(part.timestamps)
        inside = np.ones(len(steps), bool)
        inside[part.offsets[1:-1] - 1] = False  # steps across a list boundary do not count
        assert (steps[inside] >= 0).all()
