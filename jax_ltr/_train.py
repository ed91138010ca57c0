"""Training in JAX, the Flax way: ``create_train_state``, a pure jitted ``train_step`` with the
state donated, a jitted evaluation, and a ``Trainer``: the ``ltr_common.loop.Backend`` for JAX.
"""

from __future__ import annotations

import contextlib
import functools
import math
from pathlib import Path
from typing import NamedTuple

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state
from jax import lax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jax_ltr import _losses
from jax_ltr._label_order import counted_on_host, sorting_network
from jax_ltr._losses import label_order
from jax_ltr._metrics import ranking_metrics, retrieval_metrics
from jax_ltr._model import MODEL_CLASSES
from jax_ltr._sequence import PackedSequenceBatch, next_item_lists, packed_inputs
from jax_ltr._serialize import msgpack_buffers
from ltr_common import checks
from ltr_common.config import ConfigError, TrainConfig
from ltr_common.evaluation import catalog_reports, list_reports
from ltr_common.files import CheckpointError, CheckpointWriter, read_checkpoint_bytes, undecodable
from ltr_common.losses import takes_order, training_objective
from ltr_common.models import SEQUENTIAL, initial_weights, model_options, model_parameters, weight_decay
from ltr_common.sequences import SequenceBatch, pack_histories, user_histories, width_groups
from ltr_common.weights import from_canonical, to_canonical

# Dropout draws its masks with the "rbg" generator (XLA's RngBitGenerator): the default
# threefry hash compiles to a large program, about 1 s of every step's compilation on a CPU.
# JAX does not promise rbg's bits to be the same on every backend or sharding: a run resumes
# exactly on the machine it started on (tested on CPU, 1 and 4 devices), not across them.
DROPOUT_RNG = "rbg"


# A sequence batch's packed rows are rounded up to a multiple of 8: ML-100K's training
# batches (64 users, 200 slots) pack into 19 to 30 rows, so 24 or 32: two compiled shapes.
PACKED_ROW_MULTIPLE = 8


def _traced_shape(batch) -> tuple[int, ...]:
    """The shape a step is traced for: the items' [B, L], a sequence batch's [B, T] and, when
    packed, its row count."""
    if isinstance(batch, PackedSequenceBatch):
        return (*batch.batch.history.shape, batch.packing.rows.shape[0])
    return tuple(jax.tree.leaves(batch)[1].shape)


class TrainState(train_state.TrainState):
    dropout_key: jax.Array  # raw key data (uint32) of a DROPOUT_RNG key: a plain array leaf


def clip_by_global_norm(max_norm: float, *, eps: float = 1e-6) -> optax.GradientTransformation:
    """Scale the gradient by ``min(1, max_norm / (norm + eps))``.

    ``torch.nn.utils.clip_grad_norm_``'s formula, ``eps`` included (``optax.clip_by_global_norm``
    has none), so both trainers take the same steps whenever clipping is active. The norm is
    taken in float32 at least: a float16 gradient's overflows at 65,504. ``max_norm``: a
    positive number; ``inf`` clips nothing, as in PyTorch.
    """
    value = checks.as_number(max_norm)
    if not (checks.is_number(value) and 0 < value):
        raise ValueError(f"max_norm must be a positive number (inf: no clipping), got {max_norm!r}")

    def update(updates, params=None):
        del params
        wide = jax.tree.map(lambda g: g.astype(jnp.promote_types(g.dtype, jnp.float32)), updates)
        scale = jnp.minimum(1.0, value / (optax.tree.norm(wide) + eps))
        return jax.tree.map(lambda g: g * scale.astype(g.dtype), updates)

    return optax.stateless(lambda updates, params: update(updates, params))


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Clip by global norm, then Adam, with decoupled weight decay where it is positive
    (``ltr_common.models.weight_decay``: one rate for matrices, one for biases): AdamW,
    ``optax.adamw``'s chain with a rate per parameter."""
    parts = [clip_by_global_norm(config.grad_clip_norm), optax.scale_by_adam()]
    for rate in sorted({config.weight_decay, config.bias_weight_decay} - {0.0}):
        mask = functools.partial(
            jax.tree.map, lambda p, rate=rate: weight_decay(config, jnp.shape(p)) == rate
        )
        parts.append(optax.add_decayed_weights(rate, mask=mask))
    parts.append(optax.scale_by_learning_rate(config.learning_rate))
    return optax.chain(*parts)


def make_model(config: TrainConfig, num_users: int, num_items: int):
    """The ``config.model`` scorer (``MODEL_CLASSES``) with its dimensions from ``config``."""
    return MODEL_CLASSES[config.model](num_users, num_items, **model_options(config))


def create_train_state(config: TrainConfig, num_users: int, num_items: int) -> TrainState:
    """The model's initial weights (``ltr_common.models.initial_weights``), the optimiser, a dropout key."""
    model = make_model(config, num_users, num_items)
    expected = jax.eval_shape(model.init, jax.random.PRNGKey(0), *_example_inputs(config))
    weights = initial_weights(model_parameters(config, num_users, num_items), config.seed)
    tree = from_canonical(weights, model.LAYOUT, target="flax")
    params = jax.tree.map(lambda spec, w: jnp.asarray(w, spec.dtype), expected["params"], tree)
    dropout_key = jax.random.key_data(jax.random.key(config.seed, impl=DROPOUT_RNG))
    return TrainState.create(
        apply_fn=model.apply, params=params, tx=make_optimizer(config), dropout_key=dropout_key
    )


def _example_inputs(config: TrainConfig) -> tuple:
    """Inputs of the shapes ``model.init`` traces with."""
    if config.model in SEQUENTIAL:
        slots = (1, config.history_length)
        return (
            jnp.zeros(slots, jnp.int32),
            jnp.ones(slots, bool),
            jnp.zeros((*slots, 1), jnp.int32),
            jnp.zeros((1, 1), jnp.int32),
            jnp.ones(slots, jnp.float32),
        )
    return jnp.zeros(1, jnp.int32), jnp.zeros((1, 1), jnp.int32)


def list_scores(apply_fn, params, batch, *, train: bool, rngs=None):
    """``(scores, labels, where)`` of a batch's lists: a ``Batch`` of user lists, or a
    ``SequenceBatch`` of next-item lists (``next_item_lists``)."""
    if isinstance(batch, SequenceBatch):
        inputs = (batch.history, batch.history_mask, batch.targets, batch.negatives, batch.history_labels)
        catalog = batch.rated_before.shape[-1] > 0
        scores = apply_fn({"params": params}, *inputs, catalog=catalog, train=train, rngs=rngs)
        return (scores, *next_item_lists(batch, scores.shape[-1]))
    if isinstance(batch, PackedSequenceBatch):
        catalog = batch.batch.rated_before.shape[-1] > 0
        scores = apply_fn({"params": params}, **packed_inputs(batch), catalog=catalog, train=train, rngs=rngs)
        return (scores, *next_item_lists(batch.batch, scores.shape[-1], batch.packing))
    scores = apply_fn({"params": params}, batch.user_ids, batch.item_ids, train=train, rngs=rngs)
    return scores, batch.labels, batch.mask


def train_step(state: TrainState, batch, pairs, order=None, *, config: TrainConfig):
    """One optimiser step; returns the new state and device-side scalars (no host sync):
    ``loss_total``, ``loss_<term>`` for each term of the objective, ``grad_norm``. ``order``:
    the batch's label order (``jax_ltr.label_order``), for the losses that take one."""
    update, metrics, _ = _gradients(state, batch, pairs, order, config, one_shift=False)
    return update(state), metrics


def one_shift_step(state: TrainState, held, batch, pairs, order=None, *, config: TrainConfig):
    """``train_step`` compiled with ListMLE's one shift alone (``jax_ltr._losses.one_shift_only``):
    about 0.3 s less compilation per program on a 2-core CPU, for the trainer that runs a step
    again where the shift was not exact. Returns ``(state, held, metrics)``.

    ``held``, a bool scalar, says that an earlier step was held back; then this one is held
    back too, and so is a step whose shift was not exact (scores spanning more than 43, or
    infinite). A step held back returns the state it was given and metrics not to be read,
    so the steps from the first held one on can be run again with ``train_step`` in order,
    with the same dropout draws. Where no step is held, the states and metrics are those of
    ``train_step`` (the same operations; XLA may fuse them otherwise, so the last bits of a
    float may differ). With no ListMLE in the objective it is ``train_step``.
    """
    update, metrics, fits = _gradients(state, batch, pairs, order, config, one_shift=True)
    if not fits:
        return update(state), held, metrics
    ok = jnp.logical_and(jnp.logical_not(held), jnp.all(jnp.stack(fits)))
    # A branch, not a select of the old state and the new: on the rerank model's step at 64
    # items the select cost about 0.3 ms, the branch about 0.1 (docs/performance.md).
    return lax.cond(ok, update, lambda kept: kept, state), jnp.logical_not(ok), metrics


def _gradients(state: TrainState, batch, pairs, order, config: TrainConfig, *, one_shift: bool):
    """``(update, metrics, checks)``: ``update(state)`` is the state after the step, ``checks``
    ListMLE's one-shift checks where ``one_shift`` (``jax_ltr._losses.one_shift_only``)."""
    dropout_key, next_key = jax.random.split(jax.random.wrap_key_data(state.dropout_key, impl=DROPOUT_RNG))

    def objective(params):
        with _losses.one_shift_only() if one_shift else contextlib.nullcontext([]) as fits:
            scores, labels, where = list_scores(
                state.apply_fn, params, batch, train=True, rngs={"dropout": dropout_key}
            )
            total, terms = training_objective(
                _losses, scores, labels, where, pairs, config.objective_terms, config, order=order
            )
        sequences = batch.batch if isinstance(batch, PackedSequenceBatch) else batch
        weight = jnp.mean(sequences.weight) if isinstance(sequences, SequenceBatch) else 1.0
        return weight * total, (total, terms, fits)

    (_, (total, terms, fits)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    metrics = {"loss_total": total, **{f"loss_{name}": value for name, value in terms.items()}}
    metrics["grad_norm"] = optax.tree.norm(grads)

    def update(before: TrainState) -> TrainState:
        return before.apply_gradients(grads=grads, dropout_key=jax.random.key_data(next_key))

    return update, metrics, fits


def eval_scores(params, batch, *, apply_fn):
    """The scores of an evaluation batch's lists (``Trainer.batch_metrics`` measures them)."""
    return apply_fn({"params": params}, batch.user_ids, batch.item_ids, train=False)


def sequence_eval_step(params, users, batch, *, model, top_k, relevance_threshold):
    """A sequence model's ``eval_step``: each list scored by its user's vector, read from the
    user's history (``users``: the histories' items and mask)."""
    vectors = model.apply({"params": params}, *users, method=model.user_vectors)
    scores = model.apply({"params": params}, vectors, batch.item_ids, method=model.score_items)
    return list_reports(ranking_metrics, scores, batch, top_k=top_k, relevance_threshold=relevance_threshold)


def catalog_step(params, users, reports, exclude, *, model, top_k):
    """Score the whole catalog for ``users`` once and measure it against each relevance mask
    of ``reports`` (``{prefix: [U, I] bool}``): one compiled pass. ``users``: user ids [U],
    or for a sequence model their ``Histories``."""
    scores = model.apply({"params": params}, *users, method=model.catalog_scores)
    return catalog_reports(retrieval_metrics, scores, reports, exclude=exclude, ks=top_k)


def make_mesh(config: TrainConfig) -> Mesh:
    """A one-axis ("batch") mesh over ``config.devices`` devices (0 = all of them).

    Lists are split across the devices; parameters and optimiser state are replicated, and
    XLA inserts the gradient all-reduce. A batch size the device count does not divide is
    refused (padding with masked rows would change what a step means).
    """
    available = jax.devices()
    count = config.devices or len(available)
    if count > len(available):
        raise ConfigError(f"--devices: asked for {count}, JAX sees {len(available)}: {available}")
    if jax.process_count() > 1 and count != len(available):
        raise ConfigError(
            f"--devices: with {jax.process_count()} processes every device takes part; "
            f"got {count} of {len(available)}"
        )
    if config.batch_size % count:
        raise ConfigError(
            f"--batch_size: {config.batch_size} lists do not split evenly over {count} devices; "
            f"use a multiple of {count} or --devices"
        )
    return Mesh(np.array(available[:count]), ("batch",))


def _place(tree, sharding: NamedSharding):
    """Host values (NumPy or single-device arrays) as global arrays laid out by ``sharding``.

    Built shard by shard from the full host value, which every process holds (same seed,
    same data order), so the same call serves one host or several."""

    def place(x):
        host = np.asarray(jax.device_get(x))
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, tree)


COMPILED_WIDTHS = (64, 256, 1024)  # then multiples of 512 (``compiled_width``)


# The most steps ``Trainer`` runs before it looks whether one was held back (``_settle``): a
# held step holds back every later one until then.
SETTLE_EVERY = 32


class _Unsettled(NamedTuple):
    """A step run by ``one_shift_step`` whose flag the host has not read yet."""

    batch: object
    pairs: object
    order: object
    held: jax.Array
    metrics: dict


def compiled_width(width: int) -> int:
    """The list width the training step is compiled for, for a batch ``width`` items wide:
    64, 256 or 1,024 (each four times the one before), then a multiple of 512.

    Each width is one compilation (about 1.3 s for the dot reranker's step on a 2-core CPU),
    while a wider pad costs a step little (that step on 32 lists: about 0.6 ms at 64 items,
    0.9 ms at 128, 1.1 ms at 256, 1.5 ms at 512, 2.4 ms at 1,024): padding batches up to
    these widths turns the dozen widths of length bucketing into three programs on ML-100K's
    rerank main job, which compiled six when every multiple of 128 was one (8 s of
    compilation against 4 s, for about 2 ms more a 29-step epoch). Padded items are masked:
    the step's values are those of the unpadded batch up to float32 rounding (sums over
    more, zero, terms may group differently), except that the MLP's dropout masks are drawn
    for the padded shape, so real items get another (equally random) draw.

    Example:
      >>> [compiled_width(w) for w in (8, 64, 96, 192, 256, 292, 717, 1100)]
      [64, 64, 256, 256, 256, 1024, 1024, 1536]
    """
    for rung in COMPILED_WIDTHS:
        if width <= rung:
            return rung
    return -(-width // 512) * 512


def pad_to_compiled_width(batch):
    """``batch`` padded on the right to ``compiled_width``: masked items of item 0, label 0."""
    width = batch.item_ids.shape[-1]
    extra = compiled_width(width) - width
    if extra == 0:
        return batch

    def pad(x):  # np.pad costs about 10x this on [32, 200] arrays
        x = np.asarray(x)
        out = np.zeros((x.shape[0], width + extra), x.dtype)
        out[:, :width] = x
        return out

    return batch._replace(item_ids=pad(batch.item_ids), labels=pad(batch.labels), mask=pad(batch.mask))


class Trainer:
    """The JAX ``ltr_common.loop.Backend``: data-parallel over ``make_mesh(config)``.

    ``one_shift``: run each step first with ListMLE's one shift alone (``one_shift_step``),
    and run it again with the full step if it did not fit; False: the full step always.
    """

    def __init__(self, config: TrainConfig, num_users: int, num_items: int, *, one_shift: bool = True):
        self.config, self.num_users, self.num_items = config, num_users, num_items
        self.model = make_model(config, num_users, num_items)
        self._parameters = model_parameters(config, num_users, num_items)
        self.mesh = make_mesh(config)
        # Packed rows come in multiples of this: few compiled shapes, and every device a share.
        self._packed_row_multiple = math.lcm(PACKED_ROW_MULTIPLE, self.mesh.size)
        self._replicated = NamedSharding(self.mesh, PartitionSpec())
        self._by_list = NamedSharding(self.mesh, PartitionSpec("batch"))
        state = create_train_state(config, num_users, num_items)
        self._state = _place(state, self._replicated)
        self._checkpoints = CheckpointWriter()
        # How the step's label orders sort integers (``sorting_network``), chosen at the first
        # batch and kept: None (the backend's way) or False (XLA's sort).
        self._sorting_network: bool | None = None
        self._sorting_chosen = False
        # The batch shapes the step was traced for, in order: one trace is one compilation.
        self.traced_shapes: list[tuple[int, ...]] = []
        # Steps run first with ListMLE's one shift alone (``one_shift_step``); those since the
        # state was last read wait in ``_unsettled`` until ``_settle`` has looked whether one
        # was held back. The first held step switches the trainer to the full step for good.
        self._orders = takes_order(config.objective_terms)  # the host gives each batch's label order
        self._one_shift = one_shift and self._orders  # only the ListMLE family has a fallback
        self._held = _place(np.asarray(False), self._replicated)
        self._unsettled: list[_Unsettled] = []
        self.replayed_steps = 0  # steps run again with the full step (``_settle``)

        def step(state, batch, pairs, order):
            self.traced_shapes.append(_traced_shape(batch))  # at trace time only
            return train_step(state, batch, pairs, order, config=config)

        def guarded_step(state, held, batch, pairs, order):
            self.traced_shapes.append(_traced_shape(batch))
            return one_shift_step(state, held, batch, pairs, order, config=config)

        replicated, by_list = self._replicated, self._by_list
        # Host inputs go to the compiled functions as NumPy in one process (jit places them by
        # ``in_shardings``, a fraction of a separate placement's cost) and as global arrays
        # built by ``_place`` across processes (see ``_inputs``).
        self._train_step = jax.jit(
            step,
            donate_argnums=0,
            in_shardings=(replicated, by_list, replicated, by_list),
            out_shardings=(replicated, replicated),
        )
        self._one_shift_step = jax.jit(
            guarded_step,
            donate_argnums=0,
            in_shardings=(replicated, replicated, by_list, replicated, by_list),
            out_shardings=(replicated, replicated, replicated),
        )
        self._eval_scores = jax.jit(  # gathered on device: every host can read them
            functools.partial(eval_scores, apply_fn=self._state.apply_fn),
            in_shardings=(replicated, by_list),
            out_shardings=replicated,
        )
        self._scores = jax.jit(
            lambda params, users: self.model.apply(
                {"params": params}, *users, method=self.model.catalog_scores
            ),
            in_shardings=replicated,
            out_shardings=replicated,
        )
        self._catalog_step = jax.jit(
            functools.partial(catalog_step, model=self.model, top_k=tuple(config.top_k)),
            in_shardings=replicated,
            out_shardings=replicated,
        )
        if config.model in SEQUENTIAL:
            self._sequence_eval_step = jax.jit(
                functools.partial(
                    sequence_eval_step,
                    model=self.model,
                    top_k=tuple(config.top_k),
                    relevance_threshold=config.relevance_threshold,
                ),
                in_shardings=(replicated, by_list, by_list),
                out_shardings=replicated,
            )
            self._user_vectors = jax.jit(
                lambda params, users: self.model.apply(
                    {"params": params}, *users, method=self.model.user_vectors
                ),
                in_shardings=replicated,
                out_shardings=replicated,
            )
            self._measure = jax.jit(
                lambda scores, reports, exclude: catalog_reports(
                    retrieval_metrics, scores, reports, exclude=exclude, ks=tuple(config.top_k)
                ),
                in_shardings=replicated,
                out_shardings=replicated,
            )

    @property
    def state(self) -> TrainState:
        """The training state after every step so far (``_settle``)."""
        self._settle()
        return self._state

    @state.setter
    def state(self, state: TrainState) -> None:
        self._settle()

        def placed(x):  # host values laid out as the steps' outputs are: no second trace
            return (
                x
                if isinstance(x, jax.Array) and x.sharding == self._replicated
                else _place(x, self._replicated)
            )

        self._state = jax.tree.map(placed, state)

    def devices(self) -> str:
        cache = jax.config.jax_compilation_cache_dir or "off"
        devices = ", ".join(str(d) for d in jax.devices())
        return f"{len(self.mesh.devices)} of {devices} (compilation cache: {cache})"

    @staticmethod
    def _inputs(tree, sharding: NamedSharding):
        """Host values as the compiled functions take them: NumPy in one process (any other
        array brought to the host first), global arrays (``_place``) when several processes
        share the mesh. jit may read a NumPy input after the call returns, and a step held back
        by ``one_shift_step`` runs again on the same inputs up to ``SETTLE_EVERY`` steps later:
        the loop hands every step arrays built for it and never changes them afterwards."""
        if jax.process_count() > 1:
            return _place(tree, sharding)
        return jax.tree.map(lambda x: x if isinstance(x, np.ndarray) else np.asarray(jax.device_get(x)), tree)

    def train_step(self, batch, pairs):
        if isinstance(batch, SequenceBatch):  # few shapes already: the sequence widths
            if self.config.packed_batches and batch.negatives.shape[-1] == 0:  # exact: see encode
                packing = pack_histories(batch.history_mask, row_multiple=self._packed_row_multiple)
                if len(packing.rows) < len(batch.history):
                    batch = PackedSequenceBatch(batch, packing)
            return self._advance(self._inputs(batch, self._by_list), None, None)
        batch = pad_to_compiled_width(batch)
        if not self._sorting_chosen:
            # Labels the counting pass places (ratings) never take the sort's branch: XLA's
            # sort compiles in a fraction of the network's time (``sorting_network``).
            self._sorting_network = False if counted_on_host(batch.labels, batch.mask) else None
            self._sorting_chosen = True
        pairs = None if pairs is None else self._inputs(tuple(pairs), self._replicated)
        # The label order from the host: the compiled step holds no ordering of its own.
        order = label_order(batch.labels, batch.mask) if self._orders else None
        return self._advance(self._inputs(batch, self._by_list), pairs, self._inputs(order, self._by_list))

    def _advance(self, batch, pairs, order) -> dict:
        """One step on inputs ready for the compiled step; returns its metrics (a dict that
        ``_settle`` fills again where the step is run again)."""
        with sorting_network(self._sorting_network):  # read when a width is traced
            if not self._one_shift:
                self._state, metrics = self._train_step(self._state, batch, pairs, order)
                return metrics
            self._state, self._held, metrics = self._one_shift_step(
                self._state, self._held, batch, pairs, order
            )
        self._unsettled.append(_Unsettled(batch, pairs, order, self._held, metrics))
        if len(self._unsettled) >= SETTLE_EVERY:  # the older half: the newest may still run
            self._settle(through=len(self._unsettled) - SETTLE_EVERY // 2 - 1)
        return metrics

    def _settle(self, through: int | None = None) -> None:
        """Run again, with the full step, every step from the first one held back by
        ``one_shift_step`` on, in order, and put their metrics in the dicts those steps
        returned; from then on every step is the full one. One host read of a flag when
        nothing was held.

        ``through``: the index in ``_unsettled`` of the newest step to look at (None: the
        last). Its flag alone answers for it and the steps before it (held chains); the later
        ones stay unsettled, so the host need not wait for the steps still running. Where one
        was held, every step is settled."""
        if not self._unsettled:
            return
        through = len(self._unsettled) - 1 if through is None else through
        if not bool(jax.device_get(self._unsettled[through].held)):
            del self._unsettled[: through + 1]
            return
        unsettled, self._unsettled = self._unsettled, []
        first = [bool(h) for h in jax.device_get([u.held for u in unsettled])].index(True)
        self._one_shift = False
        self._held = _place(np.asarray(False), self._replicated)
        with sorting_network(self._sorting_network):
            for step in unsettled[first:]:
                self._state, metrics = self._train_step(self._state, step.batch, step.pairs, step.order)
                step.metrics.clear()
                step.metrics.update(metrics)
        self.replayed_steps += len(unsettled) - first

    def metrics_to_host(self, metrics: list[dict]) -> list[dict[str, float]]:
        asked = {id(m) for m in metrics}  # settled through the newest of them: later ones may still run
        newest = [i for i, u in enumerate(self._unsettled) if id(u.metrics) in asked]
        if newest:
            self._settle(through=newest[-1])
        host = jax.device_get(metrics)
        return [{k: float(v) for k, v in m.items()} for m in host]

    def batch_metrics(self, batch, history=None) -> dict[str, np.ndarray]:
        if self.config.model in SEQUENTIAL:  # the users' vectors from ``history``, at full width
            if history is None:
                raise ValueError("a sequence model scores users from their history: give history")
            users = tuple(
                user_histories(history, self.num_users, self.config.history_length).rows(batch.user_ids)
            )
            args = self._inputs((users, batch), self._by_list)
            return jax.device_get(self._sequence_eval_step(self.state.params, *args))
        # Measured by the metrics' own compiled program, the one the baselines' scores go
        # through on the same evaluation batches: one compilation fewer per run.
        scores = jax.device_get(self._eval_scores(self.state.params, self._inputs(batch, self._by_list)))
        metrics = list_reports(
            ranking_metrics,
            scores,
            batch,
            top_k=self.config.top_k,
            relevance_threshold=self.config.relevance_threshold,
        )
        return jax.device_get(metrics)

    def _windows(self, users, history):
        """A sequence model's inputs for ``users``: their newest ``history_length`` items of
        ``history`` (a ``Lists``, one list per user), grouped by width (``width_groups``):
        ``[(rows of users, (items, mask, labels)), ...]``."""
        if history is None:
            raise ValueError("a sequence model scores users from their history: give history")
        window = user_histories(history, self.num_users, self.config.history_length).rows(users)
        return [(rows, tuple(window.rows(rows, width))) for rows, width in width_groups(window)]

    def _by_width(self, method, users, history, columns: int) -> np.ndarray:
        """``method``'s rows [U, columns] for ``users``, each width group in one call."""
        out = np.empty((len(users), columns), np.float32)
        for rows, inputs in self._windows(np.asarray(users, np.int32), history):
            out[rows] = np.asarray(
                jax.device_get(method(self.state.params, self._inputs(inputs, self._replicated)))
            )
        return out

    def user_vectors(self, users, history) -> np.ndarray:
        """A sequence model's user vectors [U, d], read from ``history``."""
        return self._by_width(self._user_vectors, users, history, self.config.embedding_dim)

    def catalog_scores(self, users, history=None) -> np.ndarray:
        if self.config.model in SEQUENTIAL:
            return self._by_width(self._scores, users, history, self.num_items)
        users = self._inputs((np.asarray(users, np.int32),), self._replicated)
        return np.asarray(jax.device_get(self._scores(self.state.params, users)))

    def catalog_metrics(self, users, reports, exclude, history=None) -> dict[str, np.ndarray]:
        if self.config.model in SEQUENTIAL:  # scored width group by width group, measured at once
            scores = self.catalog_scores(users, history)
            args = self._inputs((scores, dict(reports), exclude), self._replicated)
            return jax.device_get(self._measure(*args))
        args = self._inputs(((np.asarray(users, np.int32),), dict(reports), exclude), self._replicated)
        return jax.device_get(self._catalog_step(self.state.params, *args))

    def learning_rate(self, step: int) -> float:
        return self.config.learning_rate

    def save(self, paths, progress: dict, *, background: bool = False) -> None:
        # Multi-host: the state is replicated, so process 0 writes, and every process waits
        # until it has, so that none reads a checkpoint (resume, best at the end) too early:
        # there the write is never left to a background thread.
        many = jax.process_count() > 1
        if jax.process_index() == 0:
            self._checkpoints.write(paths, self._snapshot(progress), background=background and not many)
        if many:
            multihost_utils.sync_global_devices(f"saved {', '.join(str(p) for p in paths)}")

    def finish_saves(self) -> None:
        self._checkpoints.wait()

    def _snapshot(self, progress: dict):
        """The state now, copied to the host (the next step donates its buffers), and the
        function that serialises it."""
        state = {
            "step": self.state.step,
            "params": self.state.params,
            "opt_state": self.state.opt_state,
            "dropout_key": self.state.dropout_key,
        }
        host = jax.tree.map(lambda x: np.array(x, copy=True), jax.device_get(state))
        # Whether a step was run again and the trainer keeps the full step: a resumed run
        # compiles the step this one runs, so that it rounds as an uninterrupted run does.
        payload = {"state": host, "progress": dict(progress), "full_step": not self._one_shift}
        return lambda: msgpack_buffers(flax.serialization.to_state_dict(payload))  # Flax's bytes, uncopied

    def restore(self, path: Path) -> dict:
        self._checkpoints.wait()
        payload = read_checkpoint_bytes(path)
        try:  # msgpack fails in many ways on bytes it did not write: each is the file's fault
            raw = flax.serialization.msgpack_restore(payload)
            state, progress = raw["state"], dict(raw["progress"])
            full_step = bool(raw.get("full_step", False))
        except Exception as err:
            raise undecodable(path, payload, "JAX", err) from None
        target = {
            "step": self.state.step,
            "params": self.state.params,
            "opt_state": self.state.opt_state,
            "dropout_key": self.state.dropout_key,
        }
        try:
            restored = flax.serialization.from_state_dict(target, state)
        except (KeyError, ValueError, TypeError) as err:
            raise CheckpointError(f"{path}: does not hold this model's training state ({err})") from None
        # from_state_dict checks names, not shapes: a checkpoint of another model size, or of
        # a version with another dropout key, is refused here rather than failing a step later.
        for (name, want), have in zip(
            jax.tree_util.tree_leaves_with_path(target), jax.tree.leaves(restored), strict=True
        ):
            want_shape, have_shape = jnp.shape(want), jnp.shape(have)
            if want_shape != have_shape or jnp.result_type(want) != jnp.result_type(have):
                raise CheckpointError(
                    f"{path}: {jax.tree_util.keystr(name)} has shape {have_shape} and dtype "
                    f"{jnp.result_type(have)}; this model's is {want_shape} and {jnp.result_type(want)}"
                )
        self.state = self.state.replace(**_place(restored, self._replicated))
        self._one_shift = self._one_shift and not full_step
        return progress

    def _canonical(self) -> dict[str, np.ndarray]:
        params = jax.device_get(self.state.params)
        return to_canonical(params, self.model.LAYOUT, parameters=self._parameters, source="flax")

    def weights(self) -> dict[str, np.ndarray]:
        return self._canonical()

    def set_user_embeddings(self, users: np.ndarray) -> None:
        """Replace the user embedding matrix (same shape), e.g. for an ablation."""
        weights = self._canonical()
        if users.shape != weights["user_embedding"].shape:
            raise ValueError(f"users: expected shape {weights['user_embedding'].shape}, got {users.shape}")
        weights["user_embedding"] = users
        tree = from_canonical(weights, self.model.LAYOUT, parameters=self._parameters, target="flax")
        params = jax.tree.map(lambda old, new: np.asarray(new, old.dtype), self.state.params, tree)
        self.state = self.state.replace(params=_place(params, self._replicated))
