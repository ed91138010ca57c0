"""Model, gradient and optimiser parity: the Flax and PyTorch two-tower trainers agree."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jax_ltr
import torch_ltr
from jax_ltr import _losses as jax_losses
from jax_ltr import _train as jax_train
from ltr_common import TrainConfig, bucket_length, epoch_order, make_batch
from ltr_common.loop import host_inputs
from ltr_common.losses import training_objective
from ltr_common.models import model_parameters
from ltr_common.weights import convert
from parity_tests import _bounds
from torch_ltr import _losses as torch_losses
from torch_ltr import _train as torch_train
from torch_ltr._batch import as_arrays as torch_arrays

FLAX, TORCH = jax_ltr.TwoTowerScorer.LAYOUT, torch_ltr.TwoTowerScorer.LAYOUT

NUM_USERS, NUM_ITEMS = 943, 1682
SMALL = dict(embedding_dim=16, mlp_hidden=24, dropout=0.0, batch_size=16)
TOL = {"float64": dict(rtol=1e-12, atol=1e-12), "float32": dict(rtol=1e-6, atol=1e-6)}


def flax_params(config, dtype):
    state = jax_train.create_train_state(config, NUM_USERS, NUM_ITEMS)
    return jax.tree.map(lambda x: np.asarray(x, dtype), jax.device_get(state.params))


def flax_to_torch(params, config=None):
    parameters = None if config is None else model_parameters(config, NUM_USERS, NUM_ITEMS)
    return convert(params, FLAX, TORCH, parameters=parameters, source_name="flax")


def torch_model(config, params, dtype):
    model = torch_train.make_model(config, NUM_USERS, NUM_ITEMS).to(getattr(torch, dtype))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in flax_to_torch(params, config).items()})
    return model


def batches_of(split, config, count):
    """The first ``count`` training batches with their pairs and tie orders, all padded to
    the widest one's width (one compiled step serves them all)."""
    order = epoch_order(split.train, batch_size=config.batch_size, seed=config.seed, epoch=0)[:count]
    longest = max(int(split.train.lengths[ids].max()) for ids in order)
    width = bucket_length(longest, max_length=int(split.train.lengths.max()))
    out = []
    for index, ids in enumerate(order):
        batch = make_batch(split.train, ids, batch_size=config.batch_size, width=width)
        out.append((batch, *host_inputs(batch, config, epoch=0, index=index)))
    return out


def test_converter_round_trip_is_exact_and_checks_shapes():
    config = TrainConfig(**SMALL)
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
    with jax.enable_x64(dtype == "float64"):
        model_fn = jax_train.make_model(config, NUM_USERS, NUM_ITEMS)
        for batch, _, _ in batches_of(movielens_split, config, 3):
            ours = np.asarray(model_fn.apply({"params": params}, batch.user_ids, batch.item_ids))
            theirs = model(torch.from_numpy(batch.user_ids).long(), torch.from_numpy(batch.item_ids).long())
            assert ours.dtype == np.dtype(dtype)
            np.testing.assert_allclose(ours, theirs.detach().numpy(), **TOL[dtype])


def parameter_gradient_magnitude(config, params, batch, pairs, tie_break):
    """Per parameter entry, the magnitude of what its float32 gradient sums (``_bounds``).

    The gradient of parameter p is ``sum_i g_i ds_i/dp`` over the batch's items, ``g`` the
    training loss's score gradient. Each ``g_i`` carries the rounding of its own sum
    (``_bounds.listmle`` / ``_bounds.pairwise`` with the training reductions, "mean"), and
    each ``ds_i/dp`` is a product and sum of weights and activations. The same network with
    every weight replaced by its absolute value bounds both: its scores ``S`` bound the
    magnitude of the sums that made the scores, and its vector-Jacobian product with the
    non-negative ``m`` gives ``sum_i m_i |ds_i/dp|`` with every term counted positively (a
    ReLU's mask only removes terms). Computed in float64.
    """
    with jax.enable_x64(True):
        model = jax_train.make_model(config, NUM_USERS, NUM_ITEMS)
        params64 = jax.tree.map(lambda x: np.abs(np.asarray(x, np.float64)), params)
        scores = np.asarray(
            model.apply(
                {"params": jax.tree.map(lambda x: np.asarray(x, np.float64), params)},
                batch.user_ids,
                batch.item_ids,
            )
        )

        def abs_scores(p):
            return model.apply({"params": p}, batch.user_ids, batch.item_ids)

        absolute, vjp = jax.vjp(jax.jit(abs_scores), params64)
        labels, where = batch.labels.astype(np.float64), batch.mask
        magnitude = np.zeros(scores.shape)
        for name, weight in config.objective_terms:
            if name == "listmle":
                parts = _bounds.listmle(scores, labels, where, tie_break, score_scale=np.asarray(absolute))
            else:
                parts = _bounds.pairwise(scores, labels, where, pairs, score_scale=np.asarray(absolute))
            magnitude += weight * _bounds.reduce(parts, None, "mean")[1]
        return flax_to_torch(jax.device_get(vjp(jnp.asarray(magnitude))[0]))


def parameter_gradients(config, dtype, batch, pairs, tie_break):
    """(JAX, PyTorch) gradients of the training loss for the same weights, as torch-named dicts."""
    params = flax_params(config, dtype)
    model = torch_model(config, params, dtype)
    tie_break = tie_break.astype(dtype)
    with jax.enable_x64(dtype == "float64"):
        apply = jax_train.make_model(config, NUM_USERS, NUM_ITEMS).apply

        def objective(p):
            scores = apply({"params": p}, batch.user_ids, batch.item_ids)
            labels = jnp.asarray(batch.labels, dtype)
            terms = config.objective_terms
            return training_objective(
                jax_losses, scores, labels, batch.mask, pairs, jnp.asarray(tie_break), terms
            )[0]

        value, grads = jax.jit(jax.value_and_grad(objective))(params)
    t = torch_arrays(batch)
    total = training_objective(
        torch_losses,
        model(t.user_ids.long(), t.item_ids.long()),
        t.labels.to(getattr(torch, dtype)),
        t.mask,
        None if pairs is None else tuple(torch.from_numpy(p) for p in pairs),
        torch.from_numpy(tie_break),
        config.objective_terms,
    )[0]
    total.backward()
    torch_grads = {k: v.grad.numpy() for k, v in model.named_parameters()}
    return (float(value), flax_to_torch(jax.device_get(grads))), (total.item(), torch_grads), params


def worst_parameter_gradient_ratio(split, loss, *, batches=1):
    """max |JAX - PyTorch| / tolerance over every float32 parameter gradient entry."""
    config = TrainConfig(**SMALL, loss=loss, pairs_per_list=8)
    worst = 0.0
    for batch, pairs, tie_break in batches_of(split, config, batches):
        (_, ours), (_, theirs), params = parameter_gradients(config, "float32", batch, pairs, tie_break)
        magnitude = parameter_gradient_magnitude(config, params, batch, pairs, tie_break)
        for name, grad in theirs.items():
            allowed = _bounds.tolerance(magnitude[name], "float32")
            diff = np.abs(ours[name].astype(np.float64) - grad)
            assert not diff[allowed == 0].any(), f"{name}: a gradient where nothing was summed"
            worst = max(worst, float(np.max(diff[allowed > 0] / allowed[allowed > 0], initial=0.0)))
    return worst


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", ["listmle", "pairwise_pl", "hybrid"])
def test_parameter_gradients_equal(movielens_split, loss, dtype):
    config = TrainConfig(**SMALL, loss=loss, pairs_per_list=8)
    batch, pairs, tie_break = batches_of(movielens_split, config, 1)[0]
    (value, ours), (total, theirs), params = parameter_gradients(config, dtype, batch, pairs, tie_break)
    if dtype == "float64":
        assert value == pytest.approx(total, rel=1e-12)
        # Every loss here is invariant to a constant added to a list's scores: the output
        # bias's gradient is exactly zero, and both sides hold only rounding noise there.
        for grads in (ours, theirs):
            assert abs(float(grads.pop("output.bias")[0])) < 1e-12
        for name, grad in theirs.items():
            np.testing.assert_allclose(ours[name], grad, **TOL[dtype], err_msg=name)
        return
    magnitude = parameter_gradient_magnitude(config, params, batch, pairs, tie_break)
    assert value == pytest.approx(total, rel=1e-5)
    for name, grad in theirs.items():
        # Tolerances are ulps of what each entry sums (parameter_gradient_magnitude); the
        # output bias's exact gradient is 0, so each side must lie within it of 0 too.
        allowed = _bounds.tolerance(magnitude[name], "float32")
        np.testing.assert_array_less(
            np.abs(ours[name].astype(np.float64) - grad), allowed + (allowed == 0), name
        )
        assert not (ours[name][allowed == 0].any() or grad[allowed == 0].any()), name
        if name == "output.bias":
            assert np.abs(grad) <= allowed and np.abs(ours[name]) <= allowed


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
    data = batches_of(movielens_split, config, 20)
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
