"""The retrieval task's data: sampled negatives, what each part leaves out of the ranking,
and its bad input (on small synthetic data, and on MovieLens where its counts are known)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ltr_common import ConfigError, TrainConfig
from ltr_common.lists import Lists
from ltr_common.tasks import RetrieveTask, retrieve
from ltr_common.tasks.retrieve import UserItems, dense_mask
from tests._small import SMALL, small_data

CONFIG = dataclasses.replace(SMALL, task="retrieve", negatives=20)


@pytest.fixture(scope="module")
def task():
    return RetrieveTask(CONFIG, small_data()[1])


def rated_before(split, part):
    """{user: set of items} rated before ``part``'s lists, straight from the lists."""
    pieces = [split.older, split.train] + ([split.validation] if part == "test" else [])
    out = {}
    for lists in pieces:
        for k, user in enumerate(lists.users):
            out.setdefault(int(user), set()).update(lists.list_at(k)[0].tolist())
    return out


def test_history_is_everything_rated_before_a_part(task):
    split = task.split
    for part in ("validation", "test"):
        expected = rated_before(split, part)
        history = split.history(part)
        assert {int(u): set(history.list_at(k)[0].tolist()) for k, u in enumerate(history.users)} == expected
        _, _, exclude = task.masks(part)
        for user, items in expected.items():
            assert set(np.flatnonzero(exclude[user])) == items


def test_relevant_are_the_parts_items_and_liked_the_high_ratings(task):
    relevant, liked, exclude = task.masks("test")
    test = task.split.test
    for k, user in enumerate(test.users):
        items, labels = test.list_at(k)
        assert set(np.flatnonzero(relevant[user])) == set(items.tolist())
        assert set(np.flatnonzero(liked[user])) == set(items[labels >= 4].tolist())
    assert not (relevant & exclude).any()
    assert task.counts("test") == {
        "lists": len(test),
        "left out": task.num_users - len(test),
        "liked lists": int(liked.any(1).sum()),
    }


@pytest.mark.parametrize("draw", ["dense keys", "per user"])
def test_negatives_are_unrated_distinct_and_the_same_for_the_same_batch(task, draw, monkeypatch):
    if draw == "per user":  # the large catalogs' sampler (UserItems.sample_unrated)
        monkeypatch.setattr(retrieve, "DENSE_DRAW_MAX_ITEMS", 0)
    known = rated_before(task.split, "validation")
    seen_counts = np.zeros(task.num_items)
    for epoch in range(2):
        for batch, _ in task.epoch_inputs(epoch=epoch):
            # Each list is trained in a random order (ties at random): its negatives are its
            # valid items of label 0, wherever the shuffle put them.
            for row in np.flatnonzero(batch.list_ids >= 0):
                user = int(batch.user_ids[row])
                chosen = batch.item_ids[row][batch.mask[row] & (batch.labels[row] == 0)]
                assert len(chosen) == len(set(chosen.tolist())) == CONFIG.negatives
                assert not set(chosen.tolist()) & known.get(user, set())
                seen_counts[chosen] += 1
            assert not batch.mask[batch.list_ids < 0].any()  # padding rows stay empty
    first = [b.item_ids for b, _ in task.epoch_inputs(epoch=0)]
    again = [b.item_ids for b, _ in task.epoch_inputs(epoch=0)]
    other = [b.item_ids for b, _ in task.epoch_inputs(epoch=1)]
    assert all((a == b).all() for a, b in zip(first, again, strict=True))  # (seed, epoch, batch)
    assert any(a.shape != b.shape or (a != b).any() for a, b in zip(first, other, strict=True))
    resumed = [b.item_ids for b, _ in task.epoch_inputs(epoch=0, start_batch=2)]
    assert all((a == b).all() for a, b in zip(first[2:], resumed, strict=True))
    assert (seen_counts > 0).mean() > 0.9  # uniform over the catalog, not a few favourites


def test_unrated_items_are_drawn_uniformly_without_repeats():
    # user 0 rated items 2 and 3, user 1 nothing, user 2 items 0..6 of 10; -1 is a padding row
    items = np.array([3, 2, 6, 5, 4, 3, 2, 1, 0], np.int32)
    n = len(items)
    lists = Lists(
        np.array([0, 2], np.int32),
        np.array([0, 2, n]),
        items,
        np.ones(n, np.float32),
        np.zeros(n),
        np.arange(n),
    )
    sets = UserItems(lists, num_users=3)
    rng = np.random.default_rng(0)
    users = np.repeat([0, 1, 2, -1], 50)
    draws = 400
    counts = np.zeros((4, 10))
    for _ in range(draws):
        chosen = sets.sample_unrated(users, 3, 10, rng)
        assert chosen.shape == (200, 3)
        assert all(len(set(row)) == 3 for row in chosen.tolist())  # no item twice in a list
        for k in range(4):
            np.add.at(counts[k], chosen[50 * k : 50 * (k + 1)].ravel(), 1)
    trials = 50 * draws
    # Each of user 0's 8 unrated items is in 3/8 of the draws, every item in 3/10 for user 1
    # and the padding row, and user 2 has exactly items 7, 8, 9 left. The frequencies are
    # binomial: 6 standard deviations (about 0.021) is a bound a uniform sampler misses with
    # probability below 1e-8.
    expected = np.array([[3 / 8] * 2 + [0, 0] + [3 / 8] * 6, [3 / 10] * 10, [0] * 7 + [1] * 3, [3 / 10] * 10])
    bound = 6 * np.sqrt(expected * (1 - expected) / trials)
    assert (np.abs(counts / trials - expected) <= bound).all()
    with pytest.raises(ValueError, match="fewer than 4 unrated items of 10"):
        sets.sample_unrated(np.array([2]), 4, 10, rng)


def test_too_many_negatives_names_the_flag():
    _, split = small_data()
    with pytest.raises(
        ConfigError,
        match=r"--negatives: 590 sampled items per list, but the user who rated the most \(\d+ items by the "
        r"end of training\) has only \d+ of the \d+ items left unrated",
    ):
        RetrieveTask(dataclasses.replace(CONFIG, negatives=590), split)


def test_dense_mask_marks_each_rating(task):
    mask = dense_mask(task.split.validation, task.num_users, task.num_items)
    assert mask.sum() == task.split.validation.lengths.sum()


def test_movielens_retrieval_counts(movielens_split):
    task = RetrieveTask(TrainConfig(task="retrieve"), movielens_split)
    assert task.counts("test")["lists"] == 943 and task.counts("test")["left out"] == 0
    _, _, exclude = task.masks("test")
    per_user = exclude.sum(1)
    assert per_user.sum() == 100_000 - 9_430  # every rating but the test lists
    assert (per_user >= 10).all()


def test_the_catalog_scored_in_chunks_of_users_gives_every_users_metrics_unchanged(monkeypatch):
    """Chunks of 7 users (a last chunk shorter) against one chunk of all 300, for a trained
    model (JAX) and for a history-reading peer: the same per-user metrics."""
    import jax_ltr
    from ltr_common import baselines
    from ltr_common.tasks import retrieve
    from ltr_train import make_backend

    _, split = small_data()
    config = dataclasses.replace(CONFIG, model="dot")
    task = RetrieveTask(config, split)
    model = make_backend("jax", config, split.num_users, split.num_items)
    peer = baselines.ScoreScorer(
        baselines.ease(split.train, split.num_users, split.num_items, l2=50.0),
        jax_ltr,
        top_k=config.top_k,
        num_items=split.num_items,
    )
    whole = {name: task.per_list(scorer, "test") for name, scorer in (("model", model), ("ease", peer))}
    assert len(task.chunks()) == 1
    monkeypatch.setattr(retrieve, "CATALOG_ENTRIES", 7 * split.num_items + 3)
    assert [len(c) for c in task.chunks()] == [7] * 42 + [6]
    for name, scorer in (("model", model), ("ease", peer)):
        chunked = task.per_list(scorer, "test")
        assert set(chunked) == set(whole[name]) and "liked/ndcg@10" in chunked
        for metric, values in whole[name].items():
            np.testing.assert_allclose(
                chunked[metric], values, rtol=1e-6, atol=1e-7, err_msg=f"{name} {metric}"
            )


def test_a_metric_no_list_counts_is_nan_quietly_and_null_in_json(tmp_path):
    """A split without a rating of 4 or more has no ``liked/`` list: its mean is NaN with no
    NumPy warning, and metrics.json, strict JSON, holds null there."""
    import json
    import math
    import warnings

    from ltr_common.files import write_json
    from ltr_common.tasks.retrieve import counted_mean

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(counted_mean(np.array([np.nan, np.nan])))
        assert counted_mean(np.array([np.nan, 0.5, 0.25])) == 0.375
    write_json(
        tmp_path / "m.json",
        {"test": {"liked/ndcg@10": math.nan, "ndcg@10": 0.5}, "x": [math.inf]},
        strict=True,
    )
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"test": {"liked/ndcg@10": None, "ndcg@10": 0.5}, "x": [None]}
