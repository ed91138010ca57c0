"""Padded batches: masks, padding rows, determinism and epoch coverage."""

from __future__ import annotations

import numpy as np
import pytest

from ltr_common import bucket_length, epoch_order, iterate_batches


def all_batches(lists, **kwargs):
    return list(iterate_batches(lists, **kwargs))


@pytest.mark.parametrize("length_bucketing", [False, True])
@pytest.mark.parametrize("batch_size", [64, 512])
def test_batches_cover_every_list_once(movielens_split, batch_size, length_bucketing):
    lists = movielens_split.train
    batches = all_batches(lists, batch_size=batch_size, seed=3, epoch=1, length_bucketing=length_bucketing)
    ids = np.concatenate([b.list_ids[b.list_ids >= 0] for b in batches])
    np.testing.assert_array_equal(np.sort(ids), np.arange(len(lists)))
    assert len(batches) == -(-len(lists) // batch_size)
    for b in batches:
        real = b.list_ids >= 0
        assert b.item_ids.shape == b.labels.shape == b.mask.shape == (batch_size, b.mask.shape[1])
        assert b.user_ids.shape == (batch_size,)
        # mask sums equal the list lengths; padding rows are fully masked and zero.
        np.testing.assert_array_equal(b.mask[real].sum(1), lists.lengths[b.list_ids[real]])
        assert not b.mask[~real].any()
        assert (b.labels[~b.mask] == 0).all() and (b.item_ids[~b.mask] == 0).all()
        # The mask is a prefix: items keep their time order from position 0.
        assert (np.diff(b.mask.astype(int), axis=1) <= 0).all()
        np.testing.assert_array_equal(b.user_ids[real], lists.users[b.list_ids[real]])
        for row in np.flatnonzero(real):
            items, labels = lists.list_at(b.list_ids[row])
            np.testing.assert_array_equal(b.item_ids[row, : len(items)], items)
            np.testing.assert_array_equal(b.labels[row, : len(items)], labels)
        width = b.mask.shape[1]
        assert width == bucket_length(int(b.mask.sum(1).max()), max_length=int(lists.lengths.max()))


def test_same_seed_and_epoch_same_batches(movielens_split):
    first = all_batches(movielens_split.train, batch_size=128, seed=7, epoch=2, length_bucketing=True)
    again = all_batches(movielens_split.train, batch_size=128, seed=7, epoch=2, length_bucketing=True)
    for a, b in zip(first, again, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    other = epoch_order(movielens_split.train, batch_size=128, seed=7, epoch=3)
    assert not np.array_equal(
        np.concatenate(other),
        np.concatenate(epoch_order(movielens_split.train, batch_size=128, seed=7, epoch=2)),
    )


def test_resume_from_a_batch_sees_the_rest(movielens_split):
    full = all_batches(movielens_split.train, batch_size=100, seed=1, epoch=0)
    tail = all_batches(movielens_split.train, batch_size=100, seed=1, epoch=0, start_batch=4)
    assert len(tail) == len(full) - 4
    for a, b in zip(full[4:], tail, strict=True):
        np.testing.assert_array_equal(a.list_ids, b.list_ids)


def test_length_bucketing_cuts_padding(movielens_split):
    def padding(**kwargs):
        batches = all_batches(movielens_split.train, batch_size=64, seed=0, epoch=0, **kwargs)
        return sum(b.mask.size for b in batches) / sum(b.mask.sum() for b in batches)

    assert padding(length_bucketing=True) < padding(length_bucketing=False)


def test_eval_lists_pad_to_a_small_bucket(movielens_split):
    (batch, *rest) = all_batches(movielens_split.test, batch_size=1024, shuffle=False)
    assert not rest and batch.mask.shape == (1024, 10)
    assert (batch.list_ids[:943] == np.arange(943)).all() and (batch.list_ids[943:] == -1).all()


def test_bucket_edges():
    edges = sorted({bucket_length(n, max_length=1000) for n in range(1, 1001)})
    assert edges == [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1000]
    for n in range(1, 1001):
        width = bucket_length(n, max_length=1000)
        assert n <= width and (width <= max(8, 1.5 * n) or width == 1000)
    with pytest.raises(ValueError, match="exceeds max_length"):
        bucket_length(11, max_length=10)


@pytest.mark.parametrize("shape", [(32, 1024), (4, 70_000), (3, 1), (2, 0), (2, 3, 9), (5, 256), (5, 257)])
def test_random_order_is_the_stable_argsort_of_its_draw(shape):
    # One plain sort of packed keys stands for the stable argsort of the float32 draw, ties
    # included: 70,000 draws from 2**24 values repeat (about 146 tied pairs per list).
    from ltr_common.tasks import random_order

    draw = np.random.default_rng(7).random(shape, dtype=np.float32)
    expected = np.argsort(draw, axis=-1, kind="stable")
    got = random_order(shape, np.random.default_rng(7))
    if shape == (4, 70_000):
        assert (np.diff(np.sort(draw, axis=-1), axis=-1) == 0).any()  # the case has ties
    np.testing.assert_array_equal(got, expected)


def test_empty_lists_pad_to_masked_rows():
    from ltr_common import make_batch
    from ltr_common.lists import Lists

    empty = Lists(
        users=np.array([4, 5], np.int32),
        offsets=np.zeros(3, np.int64),
        items=np.zeros(0, np.int32),
        labels=np.zeros(0, np.float32),
        timestamps=np.zeros(0, np.int64),
        rows=np.zeros(0, np.int64),
    )
    batch = make_batch(empty, np.array([1, 0]), batch_size=3, width=8)
    assert not batch.mask.any() and not batch.item_ids.any() and not batch.labels.any()
    assert batch.user_ids.tolist() == [5, 4, 0] and batch.list_ids.tolist() == [1, 0, -1]


def test_a_list_id_outside_the_lists_is_refused(movielens_split):
    from ltr_common import make_batch

    lists = movielens_split.train
    for ids in ([-1], [0, len(lists)]):
        with pytest.raises(ValueError, match=r"list_ids must lie in \[0, "):
            make_batch(lists, np.array(ids), batch_size=4, width=800)


def test_shuffled_takes_any_leading_shape_and_empty_lists():
    from ltr_common import Batch
    from ltr_common.tasks import random_order, shuffled

    rng = np.random.default_rng(5)
    for shape in ((2, 0), (2, 3, 9), (7,)):
        batch = Batch(
            np.zeros(shape[:-1], np.int32),
            rng.integers(0, 99, shape).astype(np.int32),
            rng.random(shape).astype(np.float32),
            rng.random(shape) < 0.7,
            np.zeros(shape[:-1], np.int32),
        )
        order = random_order(shape, rng)
        moved = shuffled(batch, order)
        for name in ("item_ids", "labels", "mask"):
            expected = np.take_along_axis(getattr(batch, name), order, axis=-1)
            np.testing.assert_array_equal(getattr(moved, name), expected)


def test_shuffled_puts_each_lists_items_in_its_order(movielens_split):
    from ltr_common.tasks import random_order, shuffled

    (batch, *_) = all_batches(movielens_split.train, batch_size=16, seed=1, epoch=0)
    order = random_order(batch.labels.shape, np.random.default_rng(3))
    moved = shuffled(batch, order)
    for row in range(len(order)):
        for name in ("item_ids", "labels", "mask"):
            np.testing.assert_array_equal(getattr(moved, name)[row], getattr(batch, name)[row][order[row]])
            assert getattr(moved, name).dtype == getattr(batch, name).dtype
