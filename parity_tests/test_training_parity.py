"""Model, gradient and optimiser parity: the Flax and PyTorch two-tower trainers agree."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
import torch

from jax_ltr import _train as jax_train
from jax_ltr import label_order
from ltr_common import TrainConfig
from ltr_common.losses import LOSSES
from ltr_common.models import model_parameters
from ltr_common.weights import convert
from parity_tests import _bounds
from parity_tests._training import (
    NUM_ITEMS,
    NUM_USERS,
    SHIFT_ONLY,
    SMALL,
    absolute_network,
    batches_of,
    flax_params,
    flax_to_torch,
    layouts,
    parameter_gradients,
    torch_model,
    training_magnitudes,
)
from torch_ltr import _train as torch_train
from torch_ltr._batch import as_arrays as torch_arrays


def test_converter_round_trip_is_exact_and_checks_shapes():
    config = TrainConfig(**SMALL)
    FLAX, TORCH = layouts(config)
    parameters = model_parameters(config, NUM_USERS, NUM_ITEMS)
    params = flax_params(config, "float32")
    model = torch_model(config, params, "float32")
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    back = convert(state, TORCH, FLAX, parameters=parameters, source_name="torch")
    jax.tree.map(np.testing.assert_array_equal, back, params)
    wrong = {**state, "hidden.weight": state["hidden.weight"].T}
    with pytest.raises(
        ValueError,
        match=r"torch hidden.weight: expected shape \(24, 32\) \(for hidden_kernel \(32, 24\)\), "
        r"found \(32, 24\)",
    ):
        convert(wrong, TORCH, FLAX, parameters=parameters, source_name="torch")
    bigger = model_parameters(dataclasses.replace(config, mlp_hidden=30), NUM_USERS, NUM_ITEMS)
    with pytest.raises(
        ValueError,
        match=r"flax hidden_kernel: expected shape \(32, 30\) \(for hidden_kernel \(32, 30\)\), "
        r"found \(32, 24\)",
    ):
        convert(params, FLAX, TORCH, parameters=bigger, source_name="flax")
    with pytest.raises(ValueError, match=r"torch parameters have no output.bias \(for output_bias\)"):
        convert({k: v for k, v in state.items() if k != "output.bias"}, TORCH, FLAX, source_name="torch")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_same_weights_same_scores(movielens_split, dtype):
    config = TrainConfig(**SMALL)
    params = flax_params(config, dtype)
    model = torch_model(config, params, dtype)
    model.eval()
    model_fn = jax_train.make_model(config, NUM_USERS, NUM_ITEMS)
    for batch, _ in batches_of(movielens_split, config, 3):
        with jax.enable_x64(dtype == "float64"):
            ours = np.asarray(model_fn.apply({"params": params}, batch.user_ids, batch.item_ids))
        theirs = model(torch.from_numpy(batch.user_ids).long(), torch.from_numpy(batch.item_ids).long())
        theirs = theirs.detach().numpy()
        assert ours.dtype == np.dtype(dtype)
        # Each score sums products of weights and activations: ulps of the absolute network's.
        allowed = _bounds.tolerance(absolute_network(config, params, batch)[1], dtype, reference=theirs)
        assert (np.abs(ours.astype(np.float64) - theirs) <= allowed).all()


# Both models with the original losses; the dot model (the main job's) with every other one.
MODEL_LOSSES = [(model, loss) for model in ("mlp", "dot") for loss in ("listmle", "pairwise_pl", "hybrid")]
MODEL_LOSSES += [("dot", loss) for loss in LOSSES if loss not in ("listmle", "pairwise_pl", "hybrid")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("model", "loss"), MODEL_LOSSES)
def test_parameter_gradients_equal(movielens_split, model, loss, dtype):
    config = TrainConfig(**{**SMALL, "model": model}, loss=loss, pairs_per_list=8, listmle_k=5)
    batch, pairs = batches_of(movielens_split, config, 1)[0]
    (value, ours), (total, theirs), params = parameter_gradients(config, dtype, batch, pairs)
    # A ranking loss is invariant to a constant added to a list's scores: the gradient of
    # what only adds one (the output bias; a user's bias) is exactly zero.
    shift_only = SHIFT_ONLY[model] if LOSSES[loss].ranking else None
    if dtype == "float64":
        assert value == pytest.approx(total, rel=1e-12)
        # Both sides hold only rounding noise in the shift-only gradient.
        for grads in (ours, theirs):
            if shift_only is not None:
                assert np.abs(grads.pop(shift_only)).max() < 1e-12
        for name, grad in theirs.items():
            rtol, atol = _bounds.FLOAT64
            np.testing.assert_allclose(ours[name], grad, rtol=rtol, atol=atol, err_msg=name)
        return
    value_magnitude, magnitude, _ = training_magnitudes(config, params, batch, pairs)
    assert abs(value - total) <= _bounds.tolerance(value_magnitude, "float32")
    for name, grad in theirs.items():
        # Tolerances are ulps of what each entry sums (training_magnitudes); the
        # shift-only parameter's exact gradient is 0, so each side must lie within it of 0 too.
        allowed = _bounds.tolerance(magnitude[name], "float32")
        np.testing.assert_array_less(
            np.abs(ours[name].astype(np.float64) - grad), allowed + (allowed == 0), name
        )
        assert not (ours[name][allowed == 0].any() or grad[allowed == 0].any()), name
        if name == shift_only:
            assert (np.abs(grad) <= allowed).all() and (np.abs(ours[name]) <= allowed).all()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dot_lists_scored_through_the_catalog_product_have_the_references_gradients(
    movielens_split, dtype, monkeypatch
):
    # Lists wider than 1/8 of the catalog take the catalog's matrix product (JAX alone): the
    # parity batches are narrower, so this makes every width take it.
    import jax_ltr._model

    monkeypatch.setattr(jax_ltr._model, "CATALOG_PRODUCT_LISTS", 10**9)
    test_parameter_gradients_equal(movielens_split, "dot", "listmle", dtype)


@pytest.mark.parametrize(
    ("dtype", "clip", "weight_decay"),
    [
        ("float64", 5.0, 0.0),
        ("float32", 5.0, 0.0),
        ("float64", 0.05, 0.0),
        ("float32", 0.05, 0.0),
        ("float64", 5.0, 0.5),  # AdamW, decaying the matrices only
    ],
)
def test_twenty_adam_steps_end_equal(movielens_split, dtype, clip, weight_decay):
    """20 steps of clip + Adam in both frameworks from the same weights on the same batches.

    ``output.bias`` is left out: every loss is invariant to a constant added to the scores,
    so its gradient is exactly zero and only rounding noise reaches it, which Adam's
    normalisation turns into steps of about the learning rate, differently in each
    framework; it cannot change a loss or a ranking (checked below on centred scores).
    float64: every other tensor within 1e-9 relative to its largest entry. float32: the
    same effect hits entries whose true gradient lies below float32 noise (user embeddings,
    whose contribution is shared by all items of a list while each list's score gradient
    sums to zero), and at lr 1e-2 the trajectories then drift apart: measured after 20
    steps, relative Frobenius differences of 5.1% (user embeddings), 1.5% (item
    embeddings), 2.7% (hidden bias), 0.6% (hidden kernel), 0.04% (output kernel). float32 is
    held to per-step losses within 1e-4 and to those tensors within 10%.
    """
    config = TrainConfig(
        **{**SMALL, "learning_rate": 1e-2, "weight_decay": weight_decay},
        loss="hybrid",
        pairs_per_list=8,
        grad_clip_norm=clip,
    )
    params = flax_params(config, dtype)
    model = torch_model(config, params, dtype)
    optimizer = torch_train.make_optimizer(config, model)
    data = batches_of(movielens_split, config, 20)
    assert len(data) == 20
    losses = []
    with jax.enable_x64(dtype == "float64"):
        state = jax_train.create_train_state(config, NUM_USERS, NUM_ITEMS)
        state = state.replace(params=params, opt_state=state.tx.init(params))
        step = jax.jit(lambda s, b, p, o: jax_train.train_step(s, b, p, o, config=config))
        for batch, pairs in data:
            labels = batch.labels.astype(dtype)
            order = label_order(labels, batch.mask)  # from the host, as the trainer gives it
            state, ours = step(state, batch._replace(labels=labels), pairs, order)
            t = torch_arrays(batch._replace(labels=labels))
            theirs = torch_train.train_step(
                model,
                optimizer,
                t,
                tuple(torch.from_numpy(p) for p in pairs),
                config=config,
            )
            losses.append((float(ours["loss_total"]), float(theirs["loss_total"])))
        final = jax.device_get(state.params)
        batch = data[0][0]
        our_scores = np.asarray(
            jax_train.make_model(config, NUM_USERS, NUM_ITEMS).apply(
                {"params": final}, batch.user_ids, batch.item_ids
            )
        )
    model.eval()
    their_scores = model(torch.from_numpy(batch.user_ids).long(), torch.from_numpy(batch.item_ids).long())
    their_scores = their_scores.detach().numpy()
    ours = flax_to_torch(final, config)
    tight = dtype == "float64"
    np.testing.assert_allclose(*zip(*losses, strict=True), rtol=1e-12 if tight else 1e-4)
    if tight:  # the output bias aside, the two models score alike up to a constant
        centred = [x - x[batch.mask].mean() for x in (our_scores, their_scores)]
        np.testing.assert_allclose(centred[0][batch.mask], centred[1][batch.mask], rtol=1e-9, atol=1e-9)
    for name, value in model.state_dict().items():
        if name == "output.bias":
            continue
        reference = value.numpy()
        scale = np.abs(reference).max()
        diff = np.abs(ours[name] - reference)
        if tight:
            assert diff.max() <= 1e-9 * scale, f"{name}: max diff {diff.max():.3g}, scale {scale:.3g}"
        else:
            relative = np.linalg.norm(diff) / np.linalg.norm(reference)
            assert relative <= 0.1, f"{name}: relative difference {relative:.3g}"
