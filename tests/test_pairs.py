"""The pair sampler: uniform over pairs with different labels, seeded, oriented, fixed-size."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from ltr_common import iterate_batches, sample_pairs


def test_pairs_are_valid_oriented_and_never_tied(movielens_split):
    batch = next(iterate_batches(movielens_split.train, batch_size=64, seed=0))
    lists, i, j = sample_pairs(batch.labels, batch.mask, pairs_per_list=32, rng=np.random.default_rng(0))
    assert lists.shape == i.shape == j.shape == (64 * 32,)
    np.testing.assert_array_equal(lists, np.repeat(np.arange(64), 32))
    real = i != j
    assert (batch.mask[lists[real], i[real]] & batch.mask[lists[real], j[real]]).all()
    assert (batch.labels[lists[real], i[real]] > batch.labels[lists[real], j[real]]).all()
    # Fillers only where a list has fewer eligible pairs than asked for.
    for b in range(64):
        y = batch.labels[b, batch.mask[b]]
        eligible = (len(y) ** 2 - (np.unique(y, return_counts=True)[1] ** 2).sum()) // 2
        chosen = real[lists == b]
        assert chosen.sum() == min(eligible, 32)
        picked = set(zip(i[lists == b][chosen].tolist(), j[lists == b][chosen].tolist(), strict=True))
        assert len(picked) == chosen.sum()  # without replacement


def test_uniform_over_eligible_pairs():
    labels = np.array([[5.0, 5.0, 5.0, 5.0, 1.0, 3.0, 0.0]])
    where = np.array([[True, True, True, True, True, True, False]])
    rng = np.random.default_rng(1)
    counts = collections.Counter()
    draws = 6000
    for _ in range(draws):
        _, i, j = sample_pairs(labels, where, pairs_per_list=1, rng=rng)
        counts[(int(i[0]), int(j[0]))] += 1
    eligible = {(a, 4) for a in range(4)} | {(a, 5) for a in range(4)} | {(5, 4)}
    assert set(counts) == eligible
    expected = draws / len(eligible)
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 26.1  # chi-square, 8 degrees of freedom, p = 0.001


def test_seeded_and_deterministic():
    labels = np.random.default_rng(0).integers(1, 6, (8, 30)).astype(np.float32)
    where = np.ones_like(labels, bool)
    first = sample_pairs(labels, where, pairs_per_list=10, rng=np.random.default_rng(42))
    again = sample_pairs(labels, where, pairs_per_list=10, rng=np.random.default_rng(42))
    other = sample_pairs(labels, where, pairs_per_list=10, rng=np.random.default_rng(43))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_padding_rows_and_bad_arguments():
    labels = np.array([[2.0, 1.0], [0.0, 0.0]])
    where = np.array([[True, True], [False, False]])
    lists, i, j = sample_pairs(labels, where, pairs_per_list=3, rng=np.random.default_rng(0))
    assert (i[lists == 1] == 0).all() and (j[lists == 1] == 0).all()
    assert sorted(zip(i[lists == 0].tolist(), j[lists == 0].tolist(), strict=True)) == [
        (0, 0),
        (0, 0),
        (0, 1),
    ]
    with pytest.raises(ValueError, match="pairs_per_list must be an integer >= 1"):
        sample_pairs(labels, where, pairs_per_list=0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"must be the same \[B, L\] shape"):
        sample_pairs(labels, where[:, :1], pairs_per_list=1, rng=np.random.default_rng(0))
