"""The sequence encoder ported between Flax and PyTorch: one set of weights, the same scores
and the same parameter gradients.

How the port is held together, step by step:

1. One canonical set of parameters (``ltr_common.models.sequence_encoder``: names, shapes,
   matrices ``[in, out]``) that both model classes store under those names; the converter
   (``ltr_common.weights``) moves weights between them and checks every shape.
2. Every operation written out the same way in both: the layer norm's two-pass variance
   (Flax's own ``LayerNorm`` computes ``E[x^2] - E[x]^2``), exact GELU (``jax.nn.gelu``
   defaults to the tanh form, PyTorch to erf), the attention mask (a padding slot attends
   to itself only, so no softmax is empty), ``-inf`` rather than a large negative logit.
3. float64 first: with rounding out of the way, scores and every parameter gradient agree
   to 1e-12 (``_bounds.FLOAT64``) — any real difference in the math shows here.
4. float32 against a derived bound: a first-order rounding-error analysis of the encoder,
   replayed in float64 beside the values it bounds — the catalog scores
   (``_sequence_bounds``) and the training loss's parameter gradients, forward and backward
   rounding both (``_sequence_gradient_bounds``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jax_ltr._model as jax_model
import torch_ltr._model as torch_model
from jax_ltr import _losses as jax_losses
from jax_ltr._sequence import PackedSequenceBatch
from jax_ltr._sequence import next_item_lists as jax_lists
from jax_ltr._train import list_scores as jax_list_scores
from ltr_common.lists import Lists
from ltr_common.losses import training_objective
from ltr_common.models import initial_weights, sequence_encoder
from ltr_common.sequences import pack_histories, sequence_batch
from ltr_common.weights import from_canonical, to_canonical
from parity_tests import _bounds, _sequence_bounds, _sequence_gradient_bounds
from torch_ltr import _losses as torch_losses
from torch_ltr._batch import as_arrays
from torch_ltr._sequence import next_item_lists as torch_lists
from torch_ltr._train import list_scores as torch_list_scores

USERS, ITEMS, DIM, LENGTH, BLOCKS, HEADS, LEVELS = 6, 40, 8, 7, 2, 2, 5
# Every parameter the encoder can have: the ratings read too (``rating_levels``).
SHAPES = dict(embedding_dim=DIM, history_length=LENGTH, num_blocks=BLOCKS, rating_levels=LEVELS)


def weights(seed: int = 0, levels: int = LEVELS) -> dict[str, np.ndarray]:
    """The canonical initial weights, then moved off their initial values (layer-norm scales
    of 1 and zero biases would hide a transposed or swapped parameter)."""
    rng = np.random.default_rng(seed)
    start = initial_weights(sequence_encoder(USERS, ITEMS, **{**SHAPES, "rating_levels": levels}), seed)
    return {k: (v + rng.normal(0.0, 0.2, v.shape)).astype(np.float32) for k, v in start.items()}


def histories(seed: int = 1, lengths=(LENGTH + 3, LENGTH, 4, 2, 1, 0)):
    """Users' histories with every padding pattern: full, partly padded, a single item, empty."""
    rng = np.random.default_rng(seed)
    lists = Lists(
        users=np.arange(len(lengths), dtype=np.int32),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        items=np.concatenate([rng.permutation(ITEMS)[:n] for n in lengths]).astype(np.int32),
        labels=rng.integers(1, LEVELS + 1, sum(lengths)).astype(np.float32),
        timestamps=np.zeros(sum(lengths), np.int64),
        rows=np.arange(sum(lengths)),
    )
    return lists


def next_item_batch(negatives: int | None, seed: int, lists=None):
    """Next-item training lists of every user of ``lists`` (default ``histories()``) with a
    next item, two targets a slot: against the whole catalog (``negatives`` 0), ``negatives``
    sampled items (drawn from ``seed``), or (None) the targets alone."""
    lists = histories() if lists is None else lists
    trainable = np.flatnonzero(lists.lengths >= 2)
    rng = np.random.default_rng(seed)
    sampled = rng.integers(0, ITEMS, (len(trainable), negatives)) if negatives else None
    return sequence_batch(
        lists,
        trainable,
        batch_size=len(trainable) + 1,
        length=LENGTH,
        next_items=2,
        negatives=sampled,
        num_items=ITEMS,
        catalog=negatives is not None,
    )


MODEL_SHAPE = (USERS, ITEMS, DIM, LENGTH, BLOCKS, HEADS)


def flax_and_torch(canonical: dict, dtype: str, levels: int = LEVELS):
    flax = jax_model.SequenceScorer(*MODEL_SHAPE, dropout=0.0, rating_levels=levels)
    params = jax.tree.map(
        lambda x: jnp.asarray(x, dtype), from_canonical(canonical, flax.LAYOUT, target="flax")
    )
    return flax, params, torch_port(canonical, dtype, levels)


def torch_port(canonical: dict, dtype: str, levels: int = LEVELS):
    port = torch_model.SequenceScorer(*MODEL_SHAPE, dropout=0.0, rating_levels=levels)
    state = from_canonical(canonical, port.LAYOUT, target="torch")
    port.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype)) for k, v in state.items()})
    return port.to(getattr(torch, dtype))


def test_the_converter_round_trip_is_exact():
    canonical = weights()
    flax, params, port = flax_and_torch(canonical, "float32")
    state = {k: v.detach().numpy() for k, v in port.state_dict().items()}
    for name, value in to_canonical(
        state, port.LAYOUT, parameters=sequence_encoder(USERS, ITEMS, **SHAPES)
    ).items():
        np.testing.assert_array_equal(value, canonical[name])
    for name, value in to_canonical(jax.device_get(params), flax.LAYOUT).items():
        np.testing.assert_array_equal(value, canonical[name])
    with pytest.raises(ValueError, match="block0_query_kernel: expected shape"):
        from_canonical(
            {**canonical, "block0_query_kernel": np.zeros((DIM, DIM + 1))},
            port.LAYOUT,
            parameters=sequence_encoder(USERS, ITEMS, **SHAPES),
        )


def _catalog(flax, params, port, lists, dtype):
    from ltr_common.sequences import histories as windows

    window = windows(lists, USERS, LENGTH)
    ours = flax.apply({"params": params}, *window, method=flax.catalog_scores)
    theirs = port.catalog_scores(*(torch.from_numpy(a) for a in window))
    return np.asarray(ours, np.float64), theirs.detach().numpy().astype(np.float64), window


@pytest.mark.parametrize("levels", [0, LEVELS], ids=["items", "items-and-ratings"])
def test_float64_catalog_scores_agree(levels):
    with jax.enable_x64(True):
        flax, params, port = flax_and_torch(weights(levels=levels), "float64", levels)
        ours, theirs, _ = _catalog(flax, params, port, histories(), "float64")
    np.testing.assert_allclose(ours, theirs, rtol=_bounds.FLOAT64[0], atol=_bounds.FLOAT64[1])


def test_float32_catalog_scores_agree_within_the_derived_bound(monkeypatch):
    canonical = weights()
    flax, params, port = flax_and_torch(canonical, "float32")
    ours, theirs, window = _catalog(flax, params, port, histories(), "float32")
    exact, bound = _sequence_bounds.catalog_bound(canonical, *window, num_blocks=BLOCKS, num_heads=HEADS)
    allowed = _sequence_bounds.SAFETY * bound
    assert (np.abs(ours - exact) <= allowed).all() and (np.abs(theirs - exact) <= allowed).all()
    assert (np.abs(ours - theirs) <= 2 * allowed).all()
    # The bound is tight enough to matter: the tanh form of GELU, a common porting slip,
    # lands outside it.
    gelu = jax.nn.gelu
    monkeypatch.setattr(jax.nn, "gelu", lambda x, approximate=True: gelu(x, approximate=True))
    slipped, _, _ = _catalog(flax, params, port, histories(), "float32")
    assert (np.abs(slipped - exact) > 2 * allowed).any()


def _jax_gradients(canonical: dict, batch, loss: str, dtype: str, *, jit: bool = False):
    """``(value, gradients)`` of ``batch``'s training objective ``((loss, 1.0),)`` in JAX, by the
    trainer's own path from a batch to its lists' scores; gradients by canonical name. With
    ``jit``, compiled as the trainer's step is (XLA then fuses, and rounds, differently)."""
    with jax.enable_x64(dtype == "float64"):
        flax, params, _ = flax_and_torch(canonical, dtype)

        def objective(p):
            scores, labels, where = jax_list_scores(flax.apply, p, batch, train=False)
            return training_objective(jax_losses, scores, labels, where, None, ((loss, 1.0),))[0]

        differentiated = jax.value_and_grad(objective)
        value, grads = (jax.jit(differentiated) if jit else differentiated)(params)
        return float(value), to_canonical(jax.device_get(grads), flax.LAYOUT)


def _torch_gradients(canonical: dict, batch, loss: str, dtype: str):
    """``_jax_gradients`` in PyTorch."""
    port = torch_port(canonical, dtype)
    scores, labels, where = torch_list_scores(port, as_arrays(batch))
    total = training_objective(torch_losses, scores, labels.to(scores.dtype), where, None, ((loss, 1.0),))[0]
    total.backward()
    return total.item(), to_canonical({k: v.grad.numpy() for k, v in port.named_parameters()}, port.LAYOUT)


@pytest.mark.parametrize("negatives", [0, 5], ids=["catalog", "sampled"])
@pytest.mark.parametrize("loss", ["softmax", "listmle"])
def test_float64_training_loss_and_parameter_gradients_agree(negatives, loss):
    batch = next_item_batch(negatives, seed=2)
    value, grads = _jax_gradients(weights(), batch, loss, "float64")
    total, theirs = _torch_gradients(weights(), batch, loss, "float64")
    _assert_same_training(value, grads, total, theirs)


@pytest.mark.parametrize("negatives", [None, 0], ids=["targets-alone", "catalog"])
@pytest.mark.parametrize("loss", ["softmax", "listmle"])
def test_float64_packed_batches_train_as_the_reference(negatives, loss):
    # The JAX trainer packs short histories several to a row (``pack_histories``): attention
    # within each user, each slot at its own position. PyTorch reads one user a row.
    # Windows of 7, 4, 3, 2 and 1 inputs: rows [7], [4, 3], [2, 1] of 7 slots, where a user
    # with two targets a slot follows another (leaking attention would change its lists);
    # the first user's 4 oldest ratings lie before the window (``rated_before``).
    lists = histories(lengths=(LENGTH + 5, 5, 4, 3, 2))
    batch = next_item_batch(negatives, seed=2, lists=lists)
    packing = pack_histories(batch.history_mask, row_multiple=1)
    assert packing.valid.sum(axis=1).tolist() == [LENGTH, LENGTH, 3]
    assert negatives is None or batch.rated_before.sum() == 4
    value, grads = _jax_gradients(weights(), PackedSequenceBatch(batch, packing), loss, "float64")
    total, theirs = _torch_gradients(weights(), batch, loss, "float64")
    _assert_same_training(value, grads, total, theirs)


def _assert_same_training(value, grads, total, theirs):
    rtol, atol = _bounds.FLOAT64
    np.testing.assert_allclose(value, total, rtol=rtol, atol=atol)
    assert set(grads) == set(theirs)
    for name in grads:
        np.testing.assert_allclose(grads[name], theirs[name], rtol=rtol, atol=atol, err_msg=name)
    assert any(np.abs(g).max() > 1e-3 for g in grads.values())  # the gradients are not all ~0


def _largest_ratio(difference, bound) -> float:
    """max |difference| / bound over the entries with a bound (where it is 0, so is the
    difference: no float32 operation reaches those entries)."""
    ratio = np.divide(np.abs(difference), bound, out=np.zeros_like(bound), where=bound > 0)
    return float(ratio.max())


@pytest.mark.slow
def test_float32_parameter_gradients_agree_within_the_derived_bound(monkeypatch):
    # One of the float64 test's cases (the bound takes seconds to compile): sampled lists,
    # ListMLE; JAX compiled, as the trainer runs it.
    canonical, batch = weights(), next_item_batch(5, seed=2)
    _, ours = _jax_gradients(canonical, batch, "listmle", "float32", jit=True)
    _, theirs = _torch_gradients(canonical, batch, "listmle", "float32")
    exact, bound = _sequence_gradient_bounds.gradient_bound(
        canonical, batch, loss="listmle", num_blocks=BLOCKS, num_heads=HEADS
    )
    assert set(ours) == set(theirs) == set(exact)
    allowed = {name: _sequence_bounds.SAFETY * b for name, b in bound.items()}
    for name in exact:
        assert (np.abs(ours[name] - exact[name]) <= allowed[name]).all(), name
        assert (np.abs(theirs[name] - exact[name]) <= allowed[name]).all(), name
        assert (np.abs(ours[name] - theirs[name]) <= 2 * allowed[name]).all(), name
    used = {name: _largest_ratio(ours[name] - theirs[name], bound[name]) for name in exact}
    closest = max(used, key=used.get)
    print(f"JAX - PyTorch: at most {used[closest]:.3f} of the bound ({closest})")  # shown with -rP
    # The bound is tight enough to matter: the tanh form of GELU, the catalog test's slip,
    # lands outside it.
    gelu = jax.nn.gelu
    monkeypatch.setattr(jax.nn, "gelu", lambda x, approximate=True: gelu(x, approximate=True))
    _, slipped = _jax_gradients(canonical, batch, "listmle", "float32", jit=True)
    over = {name: _largest_ratio(slipped[name] - theirs[name], 2 * allowed[name]) for name in exact}
    print(f"tanh GELU: {sum(v > 1 for v in over.values())} leaves outside, up to {max(over.values()):.1f}x")
    assert max(over.values()) > 1


@pytest.mark.parametrize("negatives", [None, 0, 5], ids=["targets-alone", "catalog", "sampled"])
def test_next_item_lists_agree_with_each_other_and_a_plain_construction(negatives):
    lists = histories()
    # The first user reads one item three times in the window, and one slot's two targets are
    # that item twice (its first read counts; its larger grade counts).
    lists.items[[4, 5]] = lists.items[2]
    trainable = np.flatnonzero(lists.lengths >= 2)
    batch = next_item_batch(negatives, seed=3, lists=lists)
    ours = [np.asarray(a) for a in jax_lists(batch, ITEMS)]
    theirs = [a.numpy() for a in torch_lists(as_arrays(batch), ITEMS)]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    if negatives != 0:
        return
    labels, where = ours
    for row, k in enumerate(trainable):
        items = lists.items[lists.offsets[k] : lists.offsets[k + 1]].tolist()
        start = max(len(items) - (LENGTH + 1), 0)  # the window's first item
        for slot in np.flatnonzero(batch.history_mask[row]):
            read = start + int(slot) - (LENGTH - int(batch.history_mask[row].sum()))  # its index in items
            rated = set(items[: read + 1])
            assert [i for i in range(ITEMS) if where[row, slot, i]] == [
                i for i in range(ITEMS) if i not in rated
            ]
            following = items[read + 1 : read + 3]
            expected = np.zeros(ITEMS)
            for ahead, item in enumerate(following):
                expected[item] = max(expected[item], 2 - ahead)
            np.testing.assert_array_equal(labels[row, slot], expected)
    assert not where[len(trainable) :].any()  # the padding row
