"""Shared by the training-parity tests and ``scripts/check_parity.py --training``: the Flax and
PyTorch two-tower models from the same weights, their training-loss gradients on the same
batches, and the rounding bound of those gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch

import jax_ltr
import torch_ltr
from jax_ltr import _losses as jax_losses
from jax_ltr import _train as jax_train
from ltr_common import TrainConfig, bucket_length, epoch_order, make_batch
from ltr_common.losses import LOSSES, training_objective
from ltr_common.models import model_parameters
from ltr_common.tasks import host_inputs
from ltr_common.weights import convert
from parity_tests import _bounds
from torch_ltr import _losses as torch_losses
from torch_ltr import _train as torch_train
from torch_ltr._batch import as_arrays as torch_arrays

NUM_USERS, NUM_ITEMS = 943, 1682
SMALL = dict(
    task="rerank",
    model="mlp",
    embedding_dim=16,
    mlp_hidden=24,
    dropout=0.0,
    batch_size=16,
    learning_rate=1e-3,
    weight_decay=0.0,
    bias_weight_decay=0.0,
)
# Parameters a ranking loss cannot move: a constant added to all of a list's scores.
SHIFT_ONLY = {"mlp": "output.bias", "dot": "user_bias"}


def layouts(config):
    """The (Flax, PyTorch) parameter layouts of ``config.model``."""
    return jax_ltr._model.MODEL_CLASSES[config.model].LAYOUT, torch_ltr._model.MODEL_CLASSES[
        config.model
    ].LAYOUT


def flax_params(config, dtype):
    state = jax_train.create_train_state(config, NUM_USERS, NUM_ITEMS)
    return jax.tree.map(lambda x: np.asarray(x, dtype), jax.device_get(state.params))


def flax_to_torch(params, config):
    parameters = model_parameters(config, NUM_USERS, NUM_ITEMS)
    return convert(params, *layouts(config), parameters=parameters, source_name="flax")


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
        out.append(host_inputs(batch, config, epoch=0, index=index))
    return out


def absolute_network(config, params, batch):
    """``(scores, S, vjp)`` in float64: the network's scores, the scores ``S`` of the same network
    with every weight replaced by its absolute value, and the vector-Jacobian product of ``S``.

    ``S`` bounds the magnitude of every sum that made a score (a ReLU's mask only removes
    terms), and ``vjp(m)`` gives, per parameter entry, ``sum_i m_i |ds_i/dp|`` with every term
    counted positively."""
    with jax.enable_x64(True):
        model = jax_train.make_model(config, NUM_USERS, NUM_ITEMS)
        as64 = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
        scores = np.asarray(model.apply({"params": as64}, batch.user_ids, batch.item_ids))

        apply = jax.jit(lambda p, users, items: model.apply({"params": p}, users, items))
        absolute, vjp = jax.vjp(
            lambda p: apply(p, batch.user_ids, batch.item_ids), jax.tree.map(np.abs, as64)
        )
        return scores, np.asarray(absolute), vjp


def training_magnitudes(config, params, batch, pairs):
    """The magnitudes the float32 training loss and its parameter gradients sum (``_bounds``).

    Returns ``(value magnitude, {torch parameter name: magnitude}, score magnitude S)``. The
    gradient of parameter p is ``sum_i g_i ds_i/dp`` over the batch's items, ``g`` the
    objective's score gradient: each ``g_i`` carries the rounding of its own sums
    (``_bounds.loss_parts``, with the training reduction "mean" and the scores' own magnitude
    ``S``), and ``vjp`` of the absolute network propagates it through ``|ds/dp|``.
    """
    scores, absolute, vjp = absolute_network(config, params, batch)
    labels, where = batch.labels.astype(np.float64), batch.mask
    value, grad = 0.0, np.zeros(scores.shape)
    for name, weight in config.objective_terms:
        spec = LOSSES[name]
        parts = _bounds.loss_parts(
            spec.function,
            scores,
            labels,
            where,
            pairs=pairs if spec.takes_pairs else None,
            score_scale=absolute,
            options={keyword: getattr(config, field) for keyword, field in spec.config_options},
        )
        reduced = _bounds.reduce(parts, None, "mean")
        value, grad = value + weight * reduced[0], grad + weight * reduced[1]
    with jax.enable_x64(True):
        grads = flax_to_torch(jax.device_get(vjp(jnp.asarray(grad))[0]), config)
    return value, grads, absolute


def parameter_gradients(config, dtype, batch, pairs):
    """(JAX, PyTorch) gradients of the training loss for the same weights, as torch-named dicts."""
    params = flax_params(config, dtype)
    model = torch_model(config, params, dtype)
    with jax.enable_x64(dtype == "float64"):
        apply = jax_train.make_model(config, NUM_USERS, NUM_ITEMS).apply

        def objective(p):
            scores = apply({"params": p}, batch.user_ids, batch.item_ids)
            labels = jnp.asarray(batch.labels, dtype)
            terms = config.objective_terms
            return training_objective(jax_losses, scores, labels, batch.mask, pairs, terms, config)[0]

        value, grads = jax.jit(jax.value_and_grad(objective))(params)
    t = torch_arrays(batch)
    total = training_objective(
        torch_losses,
        model(t.user_ids.long(), t.item_ids.long()),
        t.labels.to(getattr(torch, dtype)),
        t.mask,
        None if pairs is None else tuple(torch.from_numpy(p) for p in pairs),
        config.objective_terms,
        config,
    )[0]
    total.backward()
    torch_grads = {k: v.grad.numpy() for k, v in model.named_parameters()}
    return (float(value), flax_to_torch(jax.device_get(grads), config)), (total.item(), torch_grads), params


def worst_parameter_gradient_ratio(split, loss, *, batches=1):
    """max |JAX - PyTorch| / tolerance over every float32 parameter gradient entry of the first
    ``batches`` training batches (``scripts/check_parity.py --training`` prints it)."""
    config = TrainConfig(**SMALL, loss=loss, pairs_per_list=8)
    worst = 0.0
    for batch, pairs in batches_of(split, config, batches):
        (_, ours), (_, theirs), params = parameter_gradients(config, "float32", batch, pairs)
        _, magnitude, _ = training_magnitudes(config, params, batch, pairs)
        for name, grad in theirs.items():
            allowed = _bounds.tolerance(magnitude[name], "float32")
            diff = np.abs(ours[name].astype(np.float64) - grad)
            assert not diff[allowed == 0].any(), f"{name}: a gradient where nothing was summed"
            worst = max(worst, float(np.max(diff[allowed > 0] / allowed[allowed > 0], initial=0.0)))
    return worst
