"""Next-item training data (``ltr_common.sequences``) and the retrieve task's sequence mode,
checked against plain-Python constructions of the same lists."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ltr_common import ConfigError, TrainConfig
from ltr_common.lists import Lists
from ltr_common.sequences import histories, pack_histories, sequence_batch, sequence_width, trainable
from ltr_common.tasks import make_task
from tests._small import small_data


def _lists(lengths, seed=0, num_items=50):
    rng = np.random.default_rng(seed)
    items = np.concatenate([rng.permutation(num_items)[:n] for n in lengths]).astype(np.int32)
    total = int(sum(lengths))
    return Lists(
        users=np.arange(len(lengths), dtype=np.int32) * 2,  # user indices with gaps
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        items=items,
        labels=rng.integers(1, 6, total).astype(np.float32),
        timestamps=np.arange(total, dtype=np.int64),
        rows=np.arange(total),
    )


def test_histories_hold_each_users_newest_items_left_padded():
    lists = _lists([9, 3, 1])
    window = histories(lists, num_users=6, length=4)
    for k, user in enumerate(lists.users):
        items, _ = lists.list_at(k)
        newest = items[-4:]
        assert window.items[user, 4 - len(newest) :].tolist() == newest.tolist()
        assert window.mask[user].tolist() == [False] * (4 - len(newest)) + [True] * len(newest)
        ratings = lists.labels[lists.offsets[k] : lists.offsets[k + 1]][-4:]
        assert window.labels[user].tolist() == [0.0] * (4 - len(newest)) + ratings.tolist()
    assert not window.mask[[1, 3, 5]].any()  # users without a list


@pytest.mark.parametrize("next_items", [1, 3])
@pytest.mark.parametrize("sampled", [False, True])
def test_each_slot_targets_the_items_that_followed_it(next_items, sampled):
    lists, length, num_items = _lists([12, 5, 2], seed=3), 6, 50
    ids = np.array([2, 0, 1])
    negatives = np.arange(9).reshape(3, 3) if sampled else None
    batch = sequence_batch(
        lists,
        ids,
        batch_size=4,
        length=length,
        next_items=next_items,
        negatives=negatives,
        num_items=num_items,
    )
    for row, k in enumerate(ids):
        items, _ = lists.list_at(k)
        window = items[-(length + 1) :]
        inputs = window[:-1]
        start = length - len(inputs)
        assert batch.history[row, start:].tolist() == inputs.tolist()
        ratings = lists.labels[lists.offsets[k] : lists.offsets[k + 1]][-(length + 1) : -1]
        assert batch.history_labels[row].tolist() == [0.0] * start + ratings.tolist()
        assert batch.history_mask[row].tolist() == [False] * start + [True] * len(inputs)
        for slot in range(len(inputs)):
            following = window[slot + 1 : slot + 1 + next_items].tolist()
            got = batch.targets[row, start + slot][batch.target_mask[row, start + slot]].tolist()
            assert got == following
        if sampled:
            assert (
                batch.negatives[row].tolist() == negatives[row].tolist() and batch.rated_before.shape[1] == 0
            )
        else:
            before = set(items[: len(items) - len(window)].tolist())
            assert set(np.flatnonzero(batch.rated_before[row]).tolist()) == before
    assert batch.list_ids.tolist() == [2, 0, 1, -1] and not batch.history_mask[3].any()


def test_a_list_without_a_next_item_is_refused_and_not_trained():
    lists = _lists([4, 1, 2])
    assert trainable(lists).lengths.tolist() == [4, 2]
    with pytest.raises(ValueError, match="two items or more"):
        sequence_batch(lists, [1], batch_size=2, length=3, next_items=1, negatives=None, num_items=50)


@pytest.mark.parametrize("seed", range(3))
def test_packing_places_every_slot_once_in_its_users_order(seed):
    rng = np.random.default_rng(seed)
    length = 20
    counts = np.concatenate([rng.integers(0, length + 1, 30), [length, 0]])
    mask = np.arange(length) >= length - counts[:, None]
    packing = pack_histories(mask, row_multiple=4)
    rows, slots, valid = packing
    assert rows.shape == slots.shape == valid.shape and rows.shape[1] == length
    assert len(rows) % 4 == 0 and len(rows) < len(mask)
    assert len(rows) < -(-counts.sum() // length) + 4  # full rows, up to the rounding
    placed = sorted(zip(rows[valid].tolist(), slots[valid].tolist(), strict=True))
    assert placed == sorted(zip(*np.nonzero(mask), strict=True))  # every real slot once, nothing else
    for row_rows, row_slots, row_valid in zip(rows, slots, valid, strict=True):
        users = row_rows[row_valid]
        for user in np.unique(users):  # one run per user, in slot order
            where = np.flatnonzero(row_valid & (row_rows == user))
            assert (np.diff(where) == 1).all() and (np.diff(row_slots[where]) == 1).all()
            assert row_slots[where[-1]] == length - 1  # up to the user's newest slot


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_drops_at_its_rate_and_keeps_the_mean(rate):
    import jax
    import jax.numpy as jnp

    from jax_ltr._model import Dropout

    x = jnp.ones((64, 999))  # an odd width: the last draw's second half unused
    layer = Dropout(rate)
    out = layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)})
    dropped = float(jnp.mean(out == 0))
    assert abs(dropped - rate) < 4 * (rate * (1 - rate) / x.size) ** 0.5  # four binomial SDs
    kept = out[out != 0]
    np.testing.assert_allclose(kept, 1 / (1 - round(rate * 2**16) / 2**16), rtol=1e-6)
    assert (layer.apply({}, x, deterministic=True) == x).all()
    almost_one = Dropout(1 - 2**-20).apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)})
    assert (almost_one == 0).all()


def test_packing_refuses_a_history_that_is_not_left_padded():
    mask = np.array([[True, False, True]])
    with pytest.raises(ValueError, match="history_mask"):
        pack_histories(mask)


def test_widths_are_quarters_of_the_history_length():
    assert [sequence_width(n, 200) for n in (1, 50, 51, 150, 151, 200)] == [50, 50, 100, 150, 200, 200]
    assert sequence_width(3, 3) == 3


def _sequence_config(**overrides):
    small = {"history_length": 16, "batch_size": 8, "embedding_dim": 8, "num_heads": 2}
    return dataclasses.replace(TrainConfig(task="retrieve", model="sequence"), **{**small, **overrides})


@pytest.mark.parametrize("negatives", [0, 7])
def test_an_epoch_trains_every_user_with_a_next_item_once(negatives):
    _, split = small_data()
    task = make_task(_sequence_config(negatives=negatives), split)
    inputs = list(task.epoch_inputs(epoch=1))
    assert len(inputs) == task.steps_per_epoch()
    users = np.concatenate([b.user_ids[b.list_ids >= 0] for b, _ in inputs])
    expected = split.history("validation")
    assert sorted(users.tolist()) == sorted(expected.users[expected.lengths >= 2].tolist())
    known = task.masks("validation")[2]
    for batch, pairs in inputs:
        assert pairs is None
        assert batch.history.shape[1] in (4, 8, 12, 16)
        if negatives:
            real = batch.list_ids >= 0
            rows = np.repeat(batch.user_ids[real], negatives)
            assert not known[rows, batch.negatives[real].ravel()].any()  # never rated in training
    # Every slot weighs the same in an epoch: the batches' weights are their slots over the mean.
    assert np.mean([batch.weight[0] for batch, _ in inputs]) == pytest.approx(1.0)
    resumed = list(task.epoch_inputs(epoch=1, start_batch=2))
    for (a, _), (b, _) in zip(inputs[2:], resumed, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_the_sequence_model_options_are_checked():
    with pytest.raises(ConfigError, match="--num_heads: expected a divisor of --embedding_dim 64"):
        TrainConfig(model="sequence", num_heads=3)
    TrainConfig(model="dot", embedding_dim=7)  # heads are the sequence model's: no check for others
    with pytest.raises(ConfigError, match=r"--negatives: expected an integer >= 1 \(0, the whole catalog"):
        TrainConfig(model="dot", negatives=0)


# Each framework's trainer reading the ratings too (the models' arithmetic with and without
# them: parity_tests/test_sequence_parity.py).
@pytest.mark.slow
@pytest.mark.parametrize(("framework", "rating_levels"), [("jax", 5), ("torch", 5)])
def test_a_sequence_model_trains_and_serves_from_its_run_directory(framework, rating_levels, tmp_path):
    from ltr_train.run import run

    ratings, split = small_data()
    # Batches of one width (one compiled step) and four evaluations: what is tested is the
    # run directory, not the widths (test_an_epoch_trains_every_user_with_a_next_item_once).
    config = _sequence_config(
        epochs=1, negatives=0, dropout=0.0, eval_every=10, rating_levels=rating_levels, length_bucketing=False
    )
    results = run(framework, config, tmp_path, data=(ratings, split), progress_bar=False)
    assert {"validation", "test", "test, training history only"} <= set(results)
    assert 0.0 < results["test"]["ndcg@10"] <= 1.0
    # The trainer reads each user's history at evaluation: the two test columns differ.
    assert results["test"]["ndcg@10"] != results["test, training history only"]["ndcg@10"]
    from ltr_train import make_backend

    backend = make_backend(framework, config, ratings.num_users, ratings.num_items)
    backend.restore(tmp_path / "checkpoint_best")
    vectors = backend.user_vectors(np.arange(ratings.num_users), split.history("test"))
    assert vectors.shape == (ratings.num_users, config.embedding_dim) and np.isfinite(vectors).all()
    with pytest.raises(ValueError, match="scores users from their history"):
        backend.catalog_scores(np.arange(3))


@pytest.mark.parametrize(
    ("negatives", "packed_batches"), [(0, True), (5, True), (0, False)], ids=["catalog", "sampled", "off"]
)
def test_the_jax_trainer_packs_catalog_batches_and_steps_as_the_reference(negatives, packed_batches):
    from jax_ltr import _train as jax_train
    from torch_ltr import _train as torch_train

    ratings, split = small_data()
    config = _sequence_config(
        negatives=negatives, dropout=0.0, history_length=64, batch_size=32, packed_batches=packed_batches
    )
    batch, pairs = next(iter(make_task(config, split).epoch_inputs(epoch=0)))
    ours = jax_train.Trainer(config, ratings.num_users, ratings.num_items)
    theirs = torch_train.Trainer(config, ratings.num_users, ratings.num_items)
    (ours_step,) = ours.metrics_to_host([ours.train_step(batch, pairs)])
    (theirs_step,) = theirs.metrics_to_host([theirs.train_step(batch, pairs)])
    (traced,) = ours.traced_shapes
    packed_rows = traced[2:]  # a packed step's shape ends with its row count
    assert bool(packed_rows) == (negatives == 0 and packed_batches)
    if packed_rows:
        assert packed_rows[0] < len(batch.history) and packed_rows[0] % jax_train.PACKED_ROW_MULTIPLE == 0
    # float32, the slots summed in another order: the mean of ~100 slot losses and the
    # gradient's norm agree to well under 1e-5 and 1e-4 (a few hundred ulps).
    np.testing.assert_allclose(ours_step["loss_total"], theirs_step["loss_total"], rtol=1e-5)
    np.testing.assert_allclose(ours_step["grad_norm"], theirs_step["grad_norm"], rtol=1e-4)


def test_the_jax_sequence_reranker_steps_as_the_reference():
    # ListMLE over each slot's next items, the JAX step compiled with one shift alone
    # (jax_ltr._train.one_shift_step): as the PyTorch reference's step, to float32 rounding.
    from jax_ltr import _train as jax_train
    from torch_ltr import _train as torch_train

    ratings, split = small_data()
    config = _sequence_config(next_items=4, dropout=0.0, history_length=64, batch_size=32)
    config = dataclasses.replace(config, task="rerank", loss="listmle", pointwise_weight=1.0)
    batch, pairs = next(iter(make_task(config, split).epoch_inputs(epoch=0)))
    ours = jax_train.Trainer(config, ratings.num_users, ratings.num_items)
    theirs = torch_train.Trainer(config, ratings.num_users, ratings.num_items)
    (ours_step,) = ours.metrics_to_host([ours.train_step(batch, pairs)])
    (theirs_step,) = theirs.metrics_to_host([theirs.train_step(batch, pairs)])
    assert ours._one_shift and ours.replayed_steps == 0
    # As in the catalog step above: a mean of ~100 slot losses, summed in another order.
    np.testing.assert_allclose(ours_step["loss_total"], theirs_step["loss_total"], rtol=1e-5)
    np.testing.assert_allclose(ours_step["grad_norm"], theirs_step["grad_norm"], rtol=1e-4)


def test_the_sequence_reranker_orders_each_slots_next_items_by_their_ratings():
    _, split = small_data()
    config = _sequence_config(next_items=4)
    config = dataclasses.replace(config, task="rerank", loss="listmle", pointwise_weight=1.0)
    task = make_task(config, split)
    lists = split.history("validation")
    batch, pairs = next(iter(task.epoch_inputs(epoch=0)))
    assert pairs is None and batch.negatives.shape[1] == 0 and batch.rated_before.shape[1] == 0
    row = int(np.flatnonzero(batch.list_ids >= 0)[0])
    user = batch.user_ids[row]
    items, labels = lists.list_at(int(np.flatnonzero(lists.users == user)[0]))
    rating = dict(zip(items.tolist(), labels.tolist(), strict=True))
    real = batch.target_mask[row]
    assert real.any()
    for item, label in zip(batch.targets[row][real], batch.target_labels[row][real], strict=True):
        assert rating[int(item)] == label  # the target's own rating, not its distance


def test_the_history_ratings_must_be_levels_the_model_reads():
    _, split = small_data()
    assert split.train.labels.max() == 5
    make_task(_sequence_config(rating_levels=5), split)
    with pytest.raises(
        ConfigError, match=r"--rating_levels: the train ratings: rating 5 is not an integer in 1\.\.4 "
    ):
        make_task(_sequence_config(rating_levels=4), split)
    halves = dataclasses.replace(split.validation, labels=split.validation.labels - 0.5)
    with pytest.raises(
        ConfigError, match=r"the validation ratings: rating \d\.5 is not an integer in 1\.\.5 "
    ):
        make_task(_sequence_config(rating_levels=5), dataclasses.replace(split, validation=halves))
    with pytest.raises(ConfigError, match="--rating_levels: expected an integer >= 0"):
        TrainConfig(model="sequence", rating_levels=-1)
    with pytest.raises(ConfigError, match="--rating_levels: expected 0 unless --model sequence"):
        TrainConfig(model="dot", rating_levels=5)
    # The ratings --max_list_size cut from the training lists are history too.
    older = dataclasses.replace(split.train, labels=np.full_like(split.train.labels, 6.0))
    with pytest.raises(ConfigError, match=r"the older \(cut by --max_list_size\) ratings: rating 6 "):
        make_task(_sequence_config(rating_levels=5), dataclasses.replace(split, older=older))
