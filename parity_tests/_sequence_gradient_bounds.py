"""A first-order rounding-error bound on the float32 parameter gradients of the sequence
encoder's training loss, computed in float64.

What is bounded: each entry ``g_p`` of each parameter's gradient of one batch's training
objective (the trainer's path: the encoder's states at every slot, the scores of each slot's
list, ``training_objective``), computed by a float32 forward and backward pass, against the
exact gradient at the same float32 weights. The float32 run is replayed in float64
(``_sequence_bounds``, whose ``u = 2^-24``, ``gamma(n) = n u / (1 - n u)`` and
``FUNCTION_ULPS`` — ``exp``, ``rsqrt``, ``erf`` and ``erfc`` on CPU are within a few ulps —
are used here), and its roundings are counted to first order (``u^2`` terms are left out),
in three kinds:

1. Forward rounding. Each rounded forward operation's result ``v_k`` carries ``delta_k``,
   ``|delta_k| <= r_k`` (``_sequence_bounds``). The backward pass reads the rounded values, so
   ``delta_k`` moves ``g_p`` by ``d g_p / d delta_k = d/d theta_p (dL / dv_k)``: the second
   derivative of the loss through the network (forward mode over the reverse-mode
   cotangents). Bound: ``sum_k |d g_p / d delta_k| r_k``.
2. Backward rounding. Every product and sum of the backward pass rounds. Each operation's
   backward pass gives each of its operands ``x_m`` a part of its cotangent, whose rounding
   bound ``rho_m`` follows from the exact cotangent of the operation's result
   (``Rounding.read``: ``gamma(n)`` times the magnitudes of the ``n`` terms a sum adds, ``u``
   a product; the softmax's, GELU's and rsqrt's formulas, which also count that they read
   their own rounded results). The rest of the backward pass is linear in the cotangent, so
   an error ``e`` in ``x_m``'s cotangent reaches the gradient as ``(dx_m / d theta)^T e``.
   The parts of a cotangent are added up as well: no value of the encoder, in either
   framework, has more than ``FAN_IN = 3`` parts (the residual stream: its layer norm's mean
   and centring and the residual add; a layer norm's output: the query, key and value
   projections; centred values: both operands of their square and the normalising product;
   the item embedding: two reads), and a sum of at most 3 parts rounds within ``gamma(2)``
   times their magnitudes. Every part carries ``gamma(FAN_IN - 1)`` times its own magnitude,
   values with a single part included: an overcount, so conservative. (JAX's per-head slices
   add disjoint parts padded with zeros: exact.) Bound: ``sum_m |dx_m / d theta_p| rho_m``.
3. The loss. Its float32 gradient with respect to the scores lies within ``_bounds.ULPS / 2``
   eps (each framework's half of the two's tolerance) times ``_bounds.loss_magnitude``'s
   gradient magnitude of the exact one at the same scores: a rounding of the scores'
   cotangent, carried to ``g_p`` as in 2. That the scores themselves are rounded is in 1 (the
   perturbation on the scores, through the loss's second derivative).

Each framework lies within the sum of the three of the exact gradient, so the two differ by
at most twice it; the tests allow ``SAFETY`` times more, as for the scores: XLA's fusions and
reassociations move at most one rounding per term. Subnormal numbers, which XLA flushes to
zero, are not modelled: no value of these tests comes near them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jax_ltr import _losses as jax_losses
from jax_ltr._sequence import next_item_lists
from ltr_common.losses import LOSSES, training_objective
from parity_tests import _bounds
from parity_tests._sequence_bounds import (
    QUICK_COMPILE,
    Rounding,
    catalog_scores,
    encode,
    gamma,
    item_scores,
)

FAN_IN = 3
# Tangent directions (one per parameter entry) pushed through the network together.
DIRECTIONS_PER_PASS = 128


def _list_scores(rounded, weights, batch, *, num_blocks: int, num_heads: int):
    """The scores of each slot's list (``jax_ltr._train.list_scores``, ``SequenceScorer``)."""
    states = encode(
        weights,
        batch.history,
        batch.history_mask,
        batch.history_labels,
        num_blocks=num_blocks,
        num_heads=num_heads,
        rounded=rounded,
        newest_only=False,
    )
    if batch.rated_before.shape[-1] > 0:  # the whole catalog
        return catalog_scores(rounded, weights, states)
    batch_size, length, _ = batch.targets.shape
    shared = jnp.broadcast_to(batch.negatives[:, None, :], (batch_size, length, batch.negatives.shape[-1]))
    return item_scores(rounded, weights, states, jnp.concatenate([batch.targets, shared], axis=-1))


def _lists(w, batch, *, num_blocks: int, num_heads: int):
    """``(scores, labels, where)`` of ``batch``'s lists, exact."""
    scores = _list_scores(Rounding(), w, batch, num_blocks=num_blocks, num_heads=num_heads)
    return (scores, *next_item_lists(batch, scores.shape[-1]))


def _flat(arrays):
    return jnp.concatenate([jnp.ravel(a) for a in arrays])


def gradient_bound(weights: dict, batch, *, loss: str, num_blocks: int, num_heads: int):
    """``(gradient, bound)``, dicts of [parameter shape] arrays: the exact (float64) gradient
    of ``batch``'s training objective ``((loss, 1.0),)`` at the float32 ``weights`` and the
    first-order bound of a float32 computation's error in each entry."""
    shape = dict(num_blocks=num_blocks, num_heads=num_heads)
    with jax.enable_x64(True):
        w = {k: jnp.asarray(np.asarray(v, np.float32), jnp.float64) for k, v in weights.items()}
        batch = jax.tree.map(jnp.asarray, batch)
        scores, labels, where = jax.jit(_lists, static_argnames=("num_blocks", "num_heads"))(
            w, batch, **shape
        )
        _, magnitude = _bounds.loss_magnitude(
            LOSSES[loss].function, np.asarray(scores), np.asarray(labels), np.asarray(where), None, "mean"
        )
        # Each framework's half of _bounds' tolerance for the two.
        loss_rounding = float(np.finfo(np.float32).eps) * _bounds.ULPS / 2 * magnitude
        run = jax.jit(
            functools.partial(_gradient_and_bound, loss=loss, **shape), compiler_options=QUICK_COMPILE
        )
        gradient, bound = run(w, batch, jnp.asarray(loss_rounding), jnp.asarray(magnitude))
        return (
            {k: np.asarray(v) for k, v in gradient.items()},
            {k: np.asarray(v) for k, v in bound.items()},
        )


def _gradient_and_bound(
    w, batch, loss_rounding, loss_magnitude, *, loss: str, num_blocks: int, num_heads: int
):
    labels, where = next_item_lists(batch, w["item_bias"].shape[0])

    def objective(w, rounded):
        scores = _list_scores(rounded, w, batch, num_blocks=num_blocks, num_heads=num_heads)
        rounded.read(scores, lambda _: (loss_rounding, loss_magnitude))
        return training_objective(jax_losses, scores, labels, where, None, ((loss, 1.0),))[0]

    probe = Rounding()
    objective(w, probe)
    zeros = [jnp.zeros_like(r) for r in probe.bounds]

    def differentiated(w):
        """The gradient, every site's cotangent ``dL / dv_k`` and every read operand ``x_m``."""

        def run(w, deltas):
            rounded = Rounding(deltas)
            return objective(w, rounded), [operand for operand, _, _ in rounded.reads]

        (_, reads), (gradient, cotangents) = jax.value_and_grad(run, (0, 1), has_aux=True)(w, zeros)
        return gradient, cotangents, reads

    gradient, cotangents, _ = differentiated(w)
    parts = [part(cotangents[site]) for _, site, part in probe.reads]
    read_bounds = [rounding + gamma(FAN_IN - 1) * magnitude for rounding, magnitude in parts]
    flat, unravel = ravel_pytree(w)
    rates = _flat(probe.bounds + read_bounds)

    def along(entry):  # sum_k |d g_entry / d delta_k| r_k + sum_m |d x_m / d theta_entry| rho_m
        tangent = unravel(jax.nn.one_hot(entry, flat.size, dtype=flat.dtype))
        _, (_, moved, reads) = jax.jvp(differentiated, (w,), (tangent,))
        return jnp.abs(_flat(moved + reads)) @ rates

    # Whole passes only (an entry past the end is the zero direction): one traced body.
    entries = jnp.arange(-(-flat.size // DIRECTIONS_PER_PASS) * DIRECTIONS_PER_PASS)
    bound = jax.lax.map(along, entries, batch_size=DIRECTIONS_PER_PASS)[: flat.size]
    return gradient, unravel(bound)
