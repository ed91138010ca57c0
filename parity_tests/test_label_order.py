"""The label order of ListMLE and the metrics: the stable lexicographic sort, from a counting
pass or integer sorts.

``jax_ltr._label_order.descending_order`` sorts labels as unsigned integers packed with their
positions, one operand (``stable_order``); ``descending_places`` (ListMLE's order) places
small-integer labels by a counting pass (``group_rank``) instead, and sorts any others.
These tests hold both to a plain-Python stable sort on every
corner the comparison sort handled — ties, a ``tie_break``, NaN at masked positions, ±inf,
-0.0, subnormals, float64, lists past 65,536 items, labels on either side of the counting
pass's span — and check that the trainer's step does not fall back to a comparison sort.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_ltr
from jax_ltr import _label_order as label_order
from jax_ltr import _train as jax_train
from jax_ltr._label_order import (
    bitonic_sort,
    counted_levels,
    counted_on_host,
    descending_order,
    descending_places,
    first_places,
    group_rank,
    integer_groups,
)
from ltr_common.tasks import make_task, random_order
from parity_tests._jaxprs import equations
from tests._small import SMALL, small_data


@pytest.fixture(autouse=True)
def backends_own_sort(monkeypatch):
    """The orders here are traced as the backend decides (``network_beats_sorting``): on a
    CPU by the bitonic network, which the rest of the suite leaves out
    (``JAX_LTR_SORTING_NETWORK=0``, set by conftest.py)."""
    monkeypatch.delenv(label_order.SORTING_NETWORK_ENV, raising=False)


def random_tie_ranks(shape, rng) -> np.ndarray:
    """Each item's rank in a random order of its list, as float32: a ``tie_break`` of ranks."""
    return np.argsort(random_order(shape, rng), axis=-1).astype(np.float32)


def python_order(keys, where, tie_break=None) -> np.ndarray:
    """Valid items first, labels descending (-0.0 = +0.0), ties by ascending tie_break, then
    by position: Python's stable ``sorted`` on exact float keys."""
    rows = []
    for r in range(keys.shape[0]):
        tie = np.zeros(keys.shape[1]) if tie_break is None else np.where(where[r], tie_break[r], 0.0)

        def key(i, r=r, tie=tie):
            return (not where[r, i], -float(keys[r, i]) if where[r, i] else 0.0, float(tie[i]) + 0.0, i)

        rows.append(sorted(range(keys.shape[1]), key=key))
    return np.array(rows, dtype=np.int32).reshape(keys.shape)


KINDS = {
    "ratings": lambda rng, shape: rng.integers(1, 6, shape).astype(float),
    "continuous": lambda rng, shape: rng.normal(size=shape),
    "infinities and signed zeros": lambda rng, shape: rng.choice(
        [-np.inf, np.inf, 0.0, -0.0, 1.5, -2.0], shape
    ),
    "subnormals": lambda rng, shape: rng.choice([1e-45, -1e-45, 3e-39, 0.0, -0.0, 1e-30], shape),
    "large integers": lambda rng, shape: rng.integers(0, 3, shape) * 2.0**20 + rng.integers(0, 2, shape),
    "integers at an offset": lambda rng, shape: 1e6 + rng.integers(-4, 4, shape),
    "binary": lambda rng, shape: rng.integers(0, 2, shape).astype(float),
}


def _draw(kind, shape, dtype, seed):
    rng = np.random.default_rng(seed)
    keys = KINDS[kind](rng, shape).astype(dtype)
    where = rng.random(shape) < 0.8
    return keys, where, rng


def assert_places(keys, where, places=descending_places):
    """``places`` (``descending_places``: counting pass or sort) gives the stable sort."""
    expected = np.argsort(python_order(np.asarray(keys), np.asarray(where)), axis=-1)
    np.testing.assert_array_equal(np.asarray(places(keys, where)), expected)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("length", [1, 2, 7, 200, 256])
def test_the_order_is_the_stable_sort(kind, length):
    keys, where, rng = _draw(kind, (9, length), np.float32, seed=length)
    masked = np.where(where, keys, np.nan).astype(np.float32)  # NaN at masked positions
    order = jax.jit(descending_order)
    np.testing.assert_array_equal(np.asarray(order(masked, where)), python_order(keys, where))
    assert_places(masked, where, jax.jit(descending_places))
    places = jax.jit(descending_places)
    for tie in (
        rng.random(keys.shape),
        rng.integers(0, 3, keys.shape),
        rng.permutation(length) * np.ones((9, 1)),
        random_tie_ranks(keys.shape, rng),  # the trainers' tie order: placed without a sort
        np.r_[random_tie_ranks((8, length), rng), [np.arange(length) % 2]],  # one list repeats ranks
        np.minimum(random_tie_ranks(keys.shape, rng), length - 1.5),  # one rank not whole
    ):
        tie = tie.astype(np.float32)
        expected = python_order(keys, where, tie)
        np.testing.assert_array_equal(np.asarray(order(masked, where, tie)), expected)
        np.testing.assert_array_equal(np.asarray(places(masked, where, tie)), np.argsort(expected, axis=-1))


def test_nan_at_a_valid_position_goes_after_the_other_valid_items():
    import torch

    import torch_ltr._label_order as torch_label_order

    negative_nan = np.frombuffer(np.uint32(0xFFC00000).tobytes(), np.float32)[0]  # sign bit set
    keys = np.array([[1.0, np.nan, 3.0, negative_nan, 2.0, 5.0]], np.float32)
    where = np.array([[True, True, True, True, True, False]])
    got = np.asarray(jax.jit(descending_order)(keys, where))
    np.testing.assert_array_equal(got, [[2, 4, 0, 1, 3, 5]])
    theirs = torch_label_order.descending_order(torch.from_numpy(keys), torch.from_numpy(where)).numpy()[0]
    np.testing.assert_array_equal(theirs[where[0][theirs]], got[0][:5])  # the valid items alike


@pytest.mark.parametrize("kind", ["ratings", "continuous"])
def test_float64_and_lists_longer_than_65536(kind):
    keys, where, rng = _draw(kind, (2, 70_000), np.float32, seed=1)
    tie = rng.random(keys.shape).astype(np.float32)
    # XLA's sort for these long lists: which integer sort runs is not what is tested here (the
    # network's own tests are below), and its 153 stages at 131,072 rows took 3 s to compile.
    with label_order.sorting_network(False):
        np.testing.assert_array_equal(
            np.asarray(descending_order(keys, where, tie)), python_order(keys, where, tie)
        )
        assert_places(keys, where)
        assert_places(np.round(keys) % 2, where)  # binary: counted, one count per 32-bit word
    with jax.enable_x64(True):
        keys, where, rng = _draw(kind, (3, 300), np.float64, seed=2)
        assert_places(keys, where)  # ratings: counted in float64
        keys[0, :2] = [0.1, 0.1 + 2**-55]  # one float64 ulp apart: not equal in float32
        where[0, :2] = True
        tie = rng.random(keys.shape)
        np.testing.assert_array_equal(np.asarray(descending_order(keys, where)), python_order(keys, where))
        assert_places(keys, where)
        got = np.asarray(descending_order(keys, where, tie))
        np.testing.assert_array_equal(got, python_order(keys, where, tie))


@pytest.mark.parametrize("kind", ["ratings", "continuous", "integers at an offset"])
def test_lists_move_into_the_label_order_and_back(kind):
    # ListMLE's lists reach the label order by a gather where a sort gave the order, by a
    # scatter where the counting pass gave the places, one list per column; what its
    # gradient needs takes the other way back to the rows.
    keys, where, rng = _draw(kind, (6, 37), np.float32, seed=5)
    scores = rng.normal(size=keys.shape).astype(np.float32)
    index, is_order = jax.jit(label_order.label_arrangement)(keys, where)
    counted = label_order.counting_beats_sorting() and counted_on_host(keys, where)
    assert bool(is_order) is not counted
    order = python_order(keys, where)
    ranked = label_order.to_columns(jnp.asarray(scores), (index, is_order))
    np.testing.assert_array_equal(np.asarray(ranked), np.take_along_axis(scores, order, -1).T)
    placed = rng.normal(size=keys.shape).astype(np.float32)  # [r, p]: list r's item at place p
    expected = np.zeros_like(placed)
    np.put_along_axis(expected, order, placed, -1)
    back = label_order.to_rows(jnp.asarray(placed.T), (index, is_order))  # from one list per column
    np.testing.assert_array_equal(np.asarray(back), expected)
    for move in (label_order.to_columns, label_order.to_rows):  # None: in the order already
        np.testing.assert_array_equal(np.asarray(move(jnp.asarray(scores), None)), scores.T)


@pytest.mark.parametrize("reverse", [False, True])
def test_a_scan_in_place_is_the_scan(reverse):
    # Each step's output is written over the column it read (the running sums, the counting
    # pass): the same carry and outputs as lax.scan; no steps at L = 0.
    def step(carry, column):
        total = carry + column
        return total, total * 3 - 1

    columns = jnp.asarray(np.random.default_rng(7).integers(0, 9, (13, 5)), jnp.uint32)
    init = jnp.arange(5, dtype=jnp.uint32)
    in_place = jax.jit(lambda x: label_order.scan_in_place(step, init, x, reverse=reverse))
    for x in (columns, columns[:0]):
        want_carry, want = jax.lax.scan(step, init, x, reverse=reverse)
        carry, got = in_place(x)
        assert got.dtype == x.dtype and got.shape == x.shape
        np.testing.assert_array_equal(np.asarray(carry), np.asarray(want_carry))
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    # an output of another dtype would be cast silently: refused
    with pytest.raises(TypeError, match=r"a step's output must be a column, uint32\[5\], got int32\[5\]"):
        label_order.scan_in_place(lambda c, x: (c, x.astype(jnp.int32)), init, columns)


def test_put_takes_row_and_place_pairs_past_int32_flat_indices(monkeypatch):
    # A flat index of 2**31 items or more would overflow int32: such arrays scatter (row,
    # place) pairs, the same values. Traced at that size (no memory), run on a small one.
    shape = (65537, 32768)  # 2**31 + 32,768 items
    spec = jax.ShapeDtypeStruct(shape, jnp.float32)
    jax.make_jaxpr(jax.value_and_grad(lambda s, y: jax_ltr.listmle_loss(s, y)))(spec, spec)
    jax.make_jaxpr(lambda s, y: jax_ltr.lambda_loss(s, y))(spec, spec)
    rng = np.random.default_rng(6)
    values = rng.normal(size=(3, 5, 7)).astype(np.float32)
    places = np.argsort(rng.random((3, 5, 7)), axis=-1).astype(np.int32)
    flat = np.asarray(label_order.put(values, places))
    monkeypatch.setattr(label_order, "FLAT_INDEX_MAX", 10)
    paired = np.asarray(label_order.put(values, places))
    expected = np.zeros_like(values)
    np.put_along_axis(expected, places, values, -1)
    np.testing.assert_array_equal(flat, expected)
    np.testing.assert_array_equal(paired, expected)


def _trace_anew():
    """Drop the cached traces of the jitted label orders, which read ``jax.default_backend()``
    as they are traced (the functions they call are not jitted of their own). Only theirs:
    ``jax.clear_caches()`` would drop every compiled program of the test process, which the
    tests after these would then compile again."""
    for jitted in (label_order._descending_order, label_order._label_arrangement):
        jitted.clear_cache()


def test_the_32_bit_paths_of_tpus(monkeypatch, request):
    # TPUs emulate 64-bit integers: there the general path is a dense rank packed with the
    # position in a uint32, and past 65,536 items (no room for both) the comparison sort.
    monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
    # descending_order is jitted: traced anew here, and again after the test, so that no
    # other test runs the TPU trace.
    _trace_anew()
    request.addfinalizer(_trace_anew)
    for shape in ((9, 200), (2, 70_000)):
        keys, where, rng = _draw("continuous", shape, np.float32, seed=3)
        tie = rng.random(shape).astype(np.float32)
        np.testing.assert_array_equal(np.asarray(descending_order(keys, where)), python_order(keys, where))
        got = np.asarray(descending_order(keys, where, tie))
        np.testing.assert_array_equal(got, python_order(keys, where, tie))
        fresh = lambda k, w: descending_order(k, w)  # noqa: E731 (a new function: no cached trace)
        sorts = list(_sorts(jax.make_jaxpr(fresh)(keys, where).jaxpr))
        assert all(eqn.invars[0].aval.dtype != jnp.uint64 for eqn in sorts), [str(e) for e in sorts]


def test_accelerators_sort_instead_of_counting(monkeypatch, request):
    # On a GPU the counting pass is L sequential kernels (docs/gpu.md): the places come from
    # the integer sorts there, for the same result.
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    _trace_anew()  # descending_places is jitted: traced anew for "gpu", and after the test
    request.addfinalizer(_trace_anew)
    keys, where, rng = _draw("ratings", (9, 200), np.float32, seed=4)
    fresh = lambda k, w, t=None: descending_places(k, w, t)  # noqa: E731 (no cached trace)
    assert list(equations(jax.make_jaxpr(fresh)(keys, where).jaxpr, "sort"))
    assert not list(equations(jax.make_jaxpr(fresh)(keys, where).jaxpr, "scan"))
    assert_places(keys, where)
    tie = random_tie_ranks(keys.shape, rng)
    got = np.asarray(descending_places(keys, where, tie))
    np.testing.assert_array_equal(got, np.argsort(python_order(keys, where, tie), axis=-1))


def _sorts(jaxpr):
    return equations(jaxpr, "sort")


def _comparison_sorts(jaxpr) -> list[str]:
    """The sorts that are not one unsigned-integer operand: the multi-operand comparison sort."""
    return [
        str(eqn)
        for eqn in _sorts(jaxpr)
        if len(eqn.invars) != 1 or not jnp.issubdtype(eqn.invars[0].aval.dtype, jnp.unsignedinteger)
    ]


@pytest.fixture(params=["cpu", "gpu"])
def backend(request, monkeypatch):
    """The backend the label order is traced for: a CPU sorts integers by the bitonic network
    (``network_beats_sorting``), a GPU by XLA's sort; the jitted orders traced anew for it."""
    if request.param != jax.default_backend():
        monkeypatch.setattr(jax, "default_backend", lambda: request.param)
        _trace_anew()
        request.addfinalizer(_trace_anew)
    return request.param


def assert_no_comparison_sort(jaxpr, backend: str):
    """Integer sorts only: on a GPU one unsigned operand each (and at least one, so that the
    check is not vacuous); on a CPU, where the network sorts, no sort at all."""
    assert _comparison_sorts(jaxpr) == []
    if backend == "cpu":
        assert list(_sorts(jaxpr)) == []
    else:
        assert list(_sorts(jaxpr)), "no sort at all: the check would pass vacuously"


def test_the_default_loss_call_has_no_comparison_sort(backend):
    scores, labels, where = jnp.zeros((4, 200)), jnp.ones((4, 200)), jnp.ones((4, 200), bool)
    for options in ({}, {"tie_break": jnp.zeros((4, 200))}):
        value_and_grad = jax.value_and_grad(
            lambda s, o=options: jax_ltr.listmle_loss(s, labels, where=where, **o)
        )
        assert_no_comparison_sort(jax.make_jaxpr(value_and_grad)(scores).jaxpr, backend)
    # The check sees a comparison sort where there is one: XLA's stable argsort.
    argsort = jax.make_jaxpr(lambda y: jnp.argsort(-y, stable=True))(jnp.ones((4, 200)))
    assert len(_comparison_sorts(argsort.jaxpr)) == 1


@pytest.mark.parametrize("task", ["rerank", "retrieve"])
def test_the_trainers_step_has_no_comparison_sort(task, backend):
    config = dataclasses.replace(SMALL, task=task, loss="hybrid", negatives=20)
    ratings, split = small_data()
    trainer = jax_train.Trainer(config, ratings.num_users, ratings.num_items)
    batch, pairs = next(iter(make_task(config, split).epoch_inputs(epoch=0)))
    # Called without the label order (``train_step``'s default), the step orders the labels
    # itself, by no comparison sort.
    traced = trainer._train_step.trace(trainer.state, batch, pairs, None)
    assert_no_comparison_sort(traced.jaxpr.jaxpr, backend)
    # The trainer gives it the order from the host: then the step holds no sort at all.
    trainer.train_step(batch, pairs)
    (step,) = trainer._unsettled  # what the trainer handed its compiled step
    padded = jax_train.pad_to_compiled_width(batch)
    np.testing.assert_array_equal(step.order, jax_ltr.label_order(padded.labels, padded.mask))
    traced = trainer._one_shift_step.trace(trainer.state, trainer._held, step.batch, step.pairs, step.order)
    assert list(_sorts(traced.jaxpr.jaxpr)) == []


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5, 7, 9, 17, 200, 256, 257, 1000, 4097])
def test_the_bitonic_network_sorts_as_numpy(dtype, length):
    rng = np.random.default_rng(length)
    high = np.iinfo(dtype).max
    lists = (
        rng.integers(0, high, (6, length), dtype=dtype, endpoint=True),
        rng.integers(0, 4, (4, length)).astype(dtype),  # many equal keys
        np.full((2, length), high, dtype),  # the padding's own value
    )
    keys = np.concatenate(lists).reshape(3, 4, length)  # two batch axes; one program a length
    with jax.enable_x64(dtype == np.uint64):
        got = np.asarray(jax.jit(bitonic_sort)(keys))
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.sort(keys, axis=-1))


@pytest.mark.parametrize("length", [2, 3, 15, 255, 256, 1023, 1024])
def test_the_counting_pass_is_a_stable_sort_of_the_groups(length):
    # Lengths where a count's width (and so the counts per 32-bit word) changes; groups from
    # all in one (a count reaches L) to every one of them used.
    span = counted_levels(length)
    rng = np.random.default_rng(length)
    for groups in (rng.integers(0, span + 1, (5, length)), np.full((2, length), span), np.zeros((2, length))):
        groups = groups.astype(np.int32)
        got = np.asarray(jax.jit(group_rank, static_argnums=1)(groups, span))
        places = np.argsort(np.argsort(groups, axis=-1, kind="stable"), axis=-1)
        np.testing.assert_array_equal(got, places)


def _fits(labels, where=None):
    labels = np.asarray(labels, np.float32)[None]
    where = np.ones(labels.shape, bool) if where is None else np.asarray(where)[None]
    fits = bool(jax.jit(integer_groups, static_argnums=2)(labels, where, counted_levels(labels.shape[-1]))[1])
    assert counted_on_host(labels, where) == fits  # the trainers' test in NumPy says the same
    return fits


def test_which_labels_are_counted():
    span = counted_levels(200)
    assert span == 11
    top = 7.0
    ramp = top - np.arange(200) % span  # every level of the span
    assert _fits(ramp) and _fits(ramp + 3e6) and _fits(-ramp) and _fits(np.zeros(200))
    assert _fits(np.r_[-0.0, 0.0, 1.0, np.zeros(197)])
    assert not _fits(np.r_[top - span, ramp[1:]])  # one level too many
    assert not _fits(np.r_[0.5, ramp[1:]])
    # Subnormals are not integers, though XLA on CPU computes with them as zeros.
    assert not _fits(np.r_[1e-45, ramp[1:]]) and not _fits(np.r_[-1e-45, ramp[1:]])
    tiny = np.array([[0.0, 1e-45, 0.0, -1e-45, 1.0]], np.float32)
    assert_places(tiny, np.ones(tiny.shape, bool))
    for bad in (np.nan, np.inf, -np.inf):
        assert not _fits(np.r_[bad, ramp[1:]])
        assert _fits(np.r_[bad, ramp[1:]], np.r_[False, np.ones(199, bool)])  # masked: ignored
    # And on either side of the span the order is the same stable sort.
    rng = np.random.default_rng(0)
    for low in (top - span + 1, top - span):
        keys = rng.integers(low, top + 1, (6, 200)).astype(np.float32)
        keys[:, 0] = top
        where = rng.random(keys.shape) < 0.9
        where[:, 0] = True
        counted = jax.jit(integer_groups, static_argnums=2)(keys, where, span)[1]
        assert bool(counted) == (low > top - span)
        got = np.asarray(jax.jit(descending_order)(keys, where))
        np.testing.assert_array_equal(got, python_order(keys, where))
        assert_places(keys, where)


def test_places_under_vmap_where_some_lists_are_counted_and_some_sorted():
    # A batched condition: lax.cond runs both branches and selects per list.
    rng = np.random.default_rng(5)
    keys = rng.integers(1, 6, (6, 40)).astype(np.float32)
    keys[::2] += rng.random((3, 40)).astype(np.float32)  # every other list: not integers
    where = rng.random(keys.shape) < 0.8
    assert_places(keys, where, jax.jit(jax.vmap(descending_places)))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_first_places_are_the_head_of_the_stable_sort(kind):
    # Top-k ListMLE without a tie order picks its first k places one pass each.
    keys, where, _ = _draw(kind, (9, 30), np.float32, seed=7)
    where[0] = False  # no valid item
    where[1, 3:] = False  # fewer valid items than k
    masked = np.where(where, keys, np.nan).astype(np.float32)
    expected = python_order(keys, where)
    valid = where.sum(-1, keepdims=True)
    for k in (1, 5, 12):
        picks = jax.jit(first_places, static_argnums=2)(masked, where, k)
        order, chosen, rest = (np.asarray(x) for x in picks)
        np.testing.assert_array_equal(chosen, np.arange(k) < valid)
        np.testing.assert_array_equal(np.where(chosen, order, -1), np.where(chosen, expected[:, :k], -1))
        picked = np.zeros(where.shape, bool)
        for row, place in zip(*np.nonzero(chosen), strict=True):
            picked[row, order[row, place]] = True
        np.testing.assert_array_equal(rest, where & ~picked)


def test_the_trainers_shuffle_is_a_random_tie_order():
    # The trainers shuffle each list on the host (host_inputs) instead of passing a tie
    # order: the loss on the shuffled list equals the loss with the draw's ranks as tie_break.
    from ltr_common.tasks import host_inputs

    config = dataclasses.replace(SMALL, loss="listmle")
    _, split = small_data()
    task = make_task(config, split)
    original = next(iter(task.epoch_inputs(epoch=3)))[0]
    rng = np.random.default_rng([config.seed, 3, 0])
    order = random_order(original.labels.shape, rng)
    unshuffled = original._replace(
        item_ids=np.take_along_axis(original.item_ids, np.argsort(order, axis=-1), -1),
        labels=np.take_along_axis(original.labels, np.argsort(order, axis=-1), -1),
        mask=np.take_along_axis(original.mask, np.argsort(order, axis=-1), -1),
    )
    again, _ = host_inputs(unshuffled, config, epoch=3, index=0)
    np.testing.assert_array_equal(again.item_ids, original.item_ids)
    item_score = np.random.default_rng(0).normal(size=600)
    ranks = np.argsort(order, axis=-1).astype(np.float32)
    with jax.enable_x64(True):
        shuffled_loss = jax_ltr.listmle_loss(
            item_score[original.item_ids], original.labels, where=original.mask
        )
        ranked_loss = jax_ltr.listmle_loss(
            item_score[unshuffled.item_ids], unshuffled.labels, where=unshuffled.mask, tie_break=ranks
        )
    assert float(shuffled_loss) == pytest.approx(float(ranked_loss), rel=1e-12)


def test_sorting_network_or_xla_sort_the_same_order():
    keys, where, _ = _draw("continuous", (9, 200), np.float32, seed=5)
    orders = {}
    for network in (True, False):
        with label_order.sorting_network(network):
            fresh = lambda k, w: descending_order(k, w)  # noqa: E731 (a new function: no cached trace)
            sorts = list(_sorts(jax.make_jaxpr(fresh)(keys, where).jaxpr))
            assert (sorts == []) == network
            orders[network] = np.asarray(jax.jit(fresh)(keys, where))
    np.testing.assert_array_equal(orders[True], orders[False])
    np.testing.assert_array_equal(orders[True], python_order(keys, where))


@pytest.mark.parametrize("labels", ["ratings", "continuous"])
def test_the_trainer_compiles_the_network_only_for_labels_it_sorts(labels):
    # Ratings are counted: the step's sort is a branch never taken, and XLA's compiles faster.
    ratings, split = small_data()
    trainer = jax_train.Trainer(SMALL, ratings.num_users, ratings.num_items)
    batch, pairs = next(iter(make_task(SMALL, split).epoch_inputs(epoch=0)))
    if labels == "continuous":
        batch = batch._replace(labels=batch.labels + np.float32(0.25) * batch.mask)
    trainer.train_step(batch, pairs)
    assert trainer._sorting_network is (False if labels == "ratings" else None)


def test_listmle_is_the_same_through_either_sort():
    keys, where, _ = _draw("continuous", (16, 200), np.float32, seed=6)
    scores = np.random.default_rng(7).normal(size=keys.shape).astype(np.float32)
    results = []
    for network in (True, False):
        with label_order.sorting_network(network):
            value_and_grad = jax.jit(jax.value_and_grad(lambda s, y, w: jax_ltr.listmle_loss(s, y, where=w)))
            results.append(value_and_grad(scores, keys, where))
    assert float(results[0][0]) == float(results[1][0])
    np.testing.assert_array_equal(np.asarray(results[0][1]), np.asarray(results[1][1]))


def test_the_environment_variable_chooses_the_sort(monkeypatch):
    for setting, expected in (("1", True), ("0", False)):
        monkeypatch.setenv(label_order.SORTING_NETWORK_ENV, setting)
        assert label_order.network_beats_sorting() is expected
        with label_order.sorting_network(not expected):  # the context comes first
            assert label_order.network_beats_sorting() is (not expected)
    monkeypatch.setenv(label_order.SORTING_NETWORK_ENV, "yes")
    with pytest.raises(ValueError, match="JAX_LTR_SORTING_NETWORK must be 0 or 1"):
        label_order.network_beats_sorting()


def test_lists_past_the_networks_length_go_to_xlas_sort():
    with label_order.sorting_network(True):
        for length, sorted_by_xla in (
            (label_order.NETWORK_MAX_LENGTH, False),
            (label_order.NETWORK_MAX_LENGTH + 1, True),
        ):
            keys = jax.ShapeDtypeStruct((1, length), jnp.uint32)
            jaxpr = jax.make_jaxpr(label_order.sorted_unsigned)(keys).jaxpr
            assert bool(list(_sorts(jaxpr))) == sorted_by_xla, length


def test_the_hosts_label_order_is_the_references(parity_batches):
    """``jax_ltr.label_order`` (NumPy, the trainer's) against the PyTorch reference's stable
    sort, on real batches (ties, padding rows, NaN at masked places) and on continuous labels
    with ties; in int8 keys (|label| < 64), int16 keys, float keys."""
    import torch

    from torch_ltr._label_order import descending_order

    rng = np.random.default_rng(11)
    cases = [(batch.labels, batch.mask) for batch in parity_batches]
    for labels, where in list(cases):
        cases.append((np.where(where, labels, np.nan), where))
        cases.append((np.round(rng.normal(size=labels.shape), 1), where))  # continuous, tied
        cases.append((labels + 0.5, where))  # not whole: float keys
        cases.append((labels * 16 - 17, where))  # whole, -1 .. 63: int8 keys, negative labels
        cases.append((labels * 16 - 16, where))  # whole, 0 .. 64: int16 keys
        cases.append(((labels * 16 - 16).astype(np.float16), where))  # int16 keys from float16
        cases.append(((labels - 3).astype(np.float16), where))  # int8 keys from float16
    for labels, where in cases:
        expected = descending_order(torch.from_numpy(labels), torch.from_numpy(where)).numpy()
        np.testing.assert_array_equal(jax_ltr.label_order(labels, where), expected)


@pytest.mark.parametrize(
    "name", ["listmle_loss", "topk_listmle_loss", "position_listmle_loss", "hybrid_loss"]
)
def test_a_given_label_order_gives_the_call_without_it(name, parity_batches):
    # float64, the same arithmetic on the same places: equal to 1e-12 of the sizes.
    loss = getattr(jax_ltr, name)
    rng = np.random.default_rng(12)
    with jax.enable_x64(True):
        for batch in parity_batches:
            scores = jnp.asarray(rng.normal(0.0, 2.0, batch.mask.shape))
            labels, where = batch.labels, batch.mask
            order = jax_ltr.label_order(labels, where)
            results = [
                jax.value_and_grad(lambda s, o=options, y=labels, w=where: loss(s, y, where=w, **o))(scores)
                for options in ({}, {"order": order})
            ]
            (value, grad), (given_value, given_grad) = results
            np.testing.assert_allclose(given_value, value, rtol=1e-12)
            np.testing.assert_allclose(given_grad, grad, rtol=1e-12, atol=1e-12)
