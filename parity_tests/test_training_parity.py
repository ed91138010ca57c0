"""Model, gradient and optimiser parity: the Flax and PyTorch two-tower trainers agree."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jax_ltr import _train as jax_train
from ltr_common import TrainConfig, iterate_batches
from ltr_common.loop import host_inputs
from ltr_common.weights import flax_to_torch, torch_to_flax
from torch_ltr import _train as torch_train
from torch_ltr._batch import as_arrays as torch_arrays

NUM_USERS, NUM_ITEMS = 943, 1682
SMALL = dict(embedding_dim=16, mlp_hidden=24, dropout=0.0, batch_size=16)
TOL = {"float64": dict(rtol=1e-12, atol=1e-12), "float32": dict(rtol=1e-6, atol=1e-6)}


def flax_params(config, dtype):
    state = jax_train.create_train_state(config, NUM_USERS, NUM_ITEMS)
    return jax.tree.map(lambda x: np.asarray(x, dtype), jax.device_get(state.params))


def torch_model(config, params, dtype):
    model = torch_train.make_model(config, NUM_USERS, NUM_ITEMS).to(getattr(torch, dtype))
    state = flax_to_torch(params, expected_shapes={k: v.shape for k, v in model.state_dict().items()})
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model


def batches(split, config, count):
    out = []
    for batch in iterate_batches(split.train, batch_size=config.batch_size, seed=config.seed):
        out.append((batch, *host_inputs(batch, config, epoch=0, index=len(out))))
        if len(out) == count:
            return out
    return out


def test_converter_round_trip_is_exact_and_checks_shapes():
    config = TrainConfig(**SMALL)
    params = flax_params(config, "float32")
    model = torch_model(config, params, "float32")
    back = torch_to_flax({k: v.numpy() for k, v in model.state_dict().items()}, expected=params)
    jax.tree.map(np.testing.assert_array_equal, back, params)
    wrong = {k: v.numpy() for k, v in model.state_dict().items()}
    wrong["hidden.weight"] = wrong["hidden.weight"].T
    with pytest.raises(
        ValueError,
        match=r"torch hidden.weight has shape \(32, 24\), which does not fit flax hidden_kernel \(32, 24\)",
    ):
        torch_to_flax(wrong, expected=params)
    bigger = torch_train.make_model(dataclasses.replace(config, mlp_hidden=30), NUM_USERS, NUM_ITEMS)
    with pytest.raises(
        ValueError,
        match=r"flax hidden_kernel has shape \(32, 24\), which does not fit torch hidden.weight \(30, 32\)",
    ):
        flax_to_torch(params, expected_shapes={k: v.shape for k, v in bigger.state_dict().items()})


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_same_weights_same_scores(movielens_split, dtype):
    config = TrainConfig(**SMALL)
    params = flax_params(config, dtype)
    model = torch_model(config, params, dtype)
    model.eval()
    with jax.enable_x64(dtype == "float64"):
        model_fn = jax_train.make_model(config, NUM_USERS, NUM_ITEMS)
        for batch, _, _ in batches(movielens_split, config, 3):
            ours = np.asarray(model_fn.apply({"params": params}, batch.user_ids, batch.item_ids))
            theirs = model(torch.from_numpy(batch.user_ids).long(), torch.from_numpy(batch.item_ids).long())
            assert ours.dtype == np.dtype(dtype)
            np.testing.assert_allclose(ours, theirs.detach().numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", ["listmle", "pairwise_pl", "hybrid"])
def test_parameter_gradients_equal(movielens_split, loss, dtype):
    config = TrainConfig(**SMALL, loss=loss, pairs_per_list=8)
    params = flax_params(config, dtype)
    model = torch_model(config, params, dtype)
    batch, pairs, tie_break = batches(movielens_split, config, 1)[0]
    tie_break = tie_break.astype(dtype)
    with jax.enable_x64(dtype == "float64"):
        apply = jax_train.make_model(config, NUM_USERS, NUM_ITEMS).apply

        def objective(p):
            scores = apply({"params": p}, batch.user_ids, batch.item_ids)
            return jax_train.loss_terms(
                scores, jnp.asarray(batch.labels, dtype), batch.mask, pairs, jnp.asarray(tie_break), config
            )[0]

        value, grads = jax.value_and_grad(objective)(params)
    t = torch_arrays(batch)
    total = torch_train.loss_terms(
        model(t.user_ids.long(), t.item_ids.long()),
        t.labels.to(getattr(torch, dtype)),
        t.mask,
        tuple(torch.from_numpy(p) for p in pairs) if loss != "listmle" else None,
        torch.from_numpy(tie_break),
        config,
    )[0]
    total.backward()
    assert float(value) == pytest.approx(total.item(), rel=TOL[dtype]["rtol"] * 10)
    torch_grads = {k: v.grad.numpy() for k, v in model.named_parameters()}
    ours = flax_to_torch(jax.device_get(grads))
    # Every loss here is invariant to adding a constant to a list's scores, so the output
    # bias gets an exactly zero gradient: in float32 both sides hold only rounding noise.
    bias_noise = 1e-4 if dtype == "float32" else 1e-12
    assert abs(float(ours.pop("output.bias")[0])) < bias_noise
    assert abs(float(torch_grads.pop("output.bias")[0])) < bias_noise
    for name, grad in torch_grads.items():
        if dtype == "float64":
            np.testing.assert_allclose(ours[name], grad, **TOL[dtype], err_msg=name)
        else:
            # A parameter gradient sums B*L per-item float32 contributions in an order each
            # framework picks; agreement is measured against the tensor's largest entry.
            np.testing.assert_allclose(
                ours[name], grad, rtol=1e-5, atol=1e-5 * np.abs(grad).max(), err_msg=name
            )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("clip", [5.0, 0.05])
def test_twenty_adam_steps_end_equal(movielens_split, dtype, clip):
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
    config = TrainConfig(**SMALL, loss="hybrid", pairs_per_list=8, learning_rate=1e-2, grad_clip_norm=clip)
    params = flax_params(config, dtype)
    model = torch_model(config, params, dtype)
    optimizer = torch_train.make_optimizer(config, model)
    data = batches(movielens_split, config, 20)
    assert len(data) == 20
    losses = []
    with jax.enable_x64(dtype == "float64"):
        state = jax_train.create_train_state(config, NUM_USERS, NUM_ITEMS)
        state = state.replace(params=params, opt_state=state.tx.init(params))
        step = jax.jit(lambda s, b, p, tb: jax_train.train_step(s, b, p, tb, config=config))
        for batch, pairs, tie_break in data:
            labels = batch.labels.astype(dtype)
            state, ours = step(state, batch._replace(labels=labels), pairs, tie_break.astype(dtype))
            t = torch_arrays(batch._replace(labels=labels))
            theirs = torch_train.train_step(
                model,
                optimizer,
                t,
                tuple(torch.from_numpy(p) for p in pairs),
                torch.from_numpy(tie_break.astype(dtype)),
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
    ours = flax_to_torch(final)
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
