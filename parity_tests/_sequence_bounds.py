"""A first-order rounding-error bound for the float32 sequence encoder, computed in float64.

The encoder's catalog scores (``jax_ltr.SequenceScorer.catalog_scores`` and its PyTorch
port) are recomputed here in float64 on the same float32 weights, with a perturbation
``delta_k`` added to the result ``v_k`` of every rounded operation. To first order, a float32
run's error in an output ``y`` is ``sum_k dy/dv_k * delta_k``, where ``|delta_k| <= r_k``, the
rounding bound of that operation alone; so

    ``|y_float32 - y| <= sum_k |dy/dv_k| * r_k``,

with the derivatives ``dy/dv_k`` taken through the whole network (``jax.jacrev`` with respect
to the perturbations): errors that cancel downstream — a layer norm removes a shift of its
input, a softmax a constant added to its logits — are not counted, as a layer-by-layer
worst case would count them. With ``u = 2^-24`` (float32's unit roundoff) and
``gamma(n) = n u / (1 - n u)``, ``r_k`` is:

* a sum or matrix product of ``n`` terms: ``gamma(n)`` times the sum of the terms' magnitudes
  (whatever the order of accumulation: blocked, pairwise, fused multiply-adds);
* an elementwise ``+``, ``-``, ``*``, ``/``: ``u`` of the result;
* ``exp``, ``rsqrt``, ``erf``: ``FUNCTION_ULPS`` u of the result (CPU libraries and XLA's
  approximations are within a few ulps).

Second-order terms (``u^2``) are left out. Each framework lies within this bound of the exact
value, so the two differ by at most twice it; the tests allow ``SAFETY`` times more for XLA's
reassociations (a scaling moved into a product, a fused add), each of which moves at most one
rounding per term. A wrong port — a missing scale, the tanh GELU for the erf one, a mask off
by one slot, another variance estimator in the layer norm — lands far outside.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

U = 2.0**-24
SAFETY = 2.0
FUNCTION_ULPS = 4.0


def gamma(n: int) -> float:
    return n * U / (1 - n * U)


class _Rounding:
    """Collects each rounded operation's perturbation (``delta``, zero) and rounding bound."""

    def __init__(self, deltas=None):
        self.deltas, self.bounds, self.count = deltas, [], 0

    def __call__(self, value, bound):
        """``value`` plus its perturbation; ``bound`` [value's shape] its rounding bound."""
        self.bounds.append(jax.lax.stop_gradient(jnp.broadcast_to(bound, value.shape)))
        delta = None if self.deltas is None else self.deltas[self.count]
        self.count += 1
        return value if delta is None else value + delta


def _matmul(rounded, x, w):
    return rounded(x @ w, gamma(x.shape[-1]) * (jnp.abs(x) @ jnp.abs(w)))


def _add(rounded, a, b):
    value = a + b
    return rounded(value, U * jnp.abs(value))


def _mul(rounded, a, b):
    value = a * b
    return rounded(value, U * jnp.abs(value))


def _layer_norm(rounded, x, scale, bias, eps=1e-6):
    d = x.shape[-1]
    mean = rounded(jnp.mean(x, -1, keepdims=True), (gamma(d) + U) * jnp.mean(jnp.abs(x), -1, keepdims=True))
    centred = _add(rounded, x, -mean)
    square = _mul(rounded, centred, centred)
    variance = rounded(
        jnp.mean(square, -1, keepdims=True), (gamma(d) + U) * jnp.mean(square, -1, keepdims=True)
    )
    shifted = _add(rounded, variance, eps)
    inverse = jax.lax.rsqrt(shifted)
    inverse = rounded(inverse, FUNCTION_ULPS * U * inverse)
    return _add(rounded, _mul(rounded, _mul(rounded, centred, inverse), scale), bias)


def _scores(weights, history, mask, ratings, *, num_blocks: int, num_heads: int, rounded):
    w = weights
    d = w["item_embedding"].shape[1]
    length = history.shape[1]
    x = _mul(rounded, w["item_embedding"][history], jnp.asarray(math.sqrt(d)))
    x = _add(rounded, x, w["position_embedding"][-length:])
    if "rating_embedding" in w:  # ratings 1..N read as rows 0..N-1
        levels = w["rating_embedding"].shape[0]
        x = _add(rounded, x, w["rating_embedding"][jnp.clip(ratings.astype(jnp.int32), 1, levels) - 1])
    x = jnp.where(mask[..., None], x, 0.0)
    allowed = (jnp.tril(jnp.ones((length, length), bool)) & mask[:, None, :]) | jnp.eye(length, dtype=bool)
    allowed = allowed[:, None]
    width = d // num_heads
    for block in range(num_blocks):
        last = block == num_blocks - 1
        p = lambda name, block=block: w[f"block{block}_{name}"]  # noqa: E731
        h = _layer_norm(rounded, x, p("attention_norm_scale"), p("attention_norm_bias"))
        queries = h[:, -1:] if last else h

        def project(part, rows, p=p):
            out = _add(rounded, _matmul(rounded, rows, p(f"{part}_kernel")), p(f"{part}_bias"))
            return out.reshape(*rows.shape[:2], num_heads, width)

        q, k, v = project("query", queries), project("key", h), project("value", h)
        dot = jnp.einsum("bqhe,bkhe->bhqk", q, k)
        dot = rounded(dot, gamma(width) * jnp.einsum("bqhe,bkhe->bhqk", jnp.abs(q), jnp.abs(k)))
        logits = _mul(rounded, dot, jnp.asarray(1 / math.sqrt(width)))
        mask_rows = allowed[:, :, -1:] if last else allowed
        logits = jnp.where(mask_rows, logits, -jnp.inf)
        top = jax.lax.stop_gradient(jnp.max(logits, -1, keepdims=True))
        centred = jnp.where(mask_rows, logits - top, -jnp.inf)
        centred = rounded(centred, U * jnp.where(mask_rows, jnp.abs(centred), 0.0))
        exps = jnp.exp(centred)
        exps = rounded(exps, FUNCTION_ULPS * U * exps)
        total = rounded(jnp.sum(exps, -1, keepdims=True), gamma(length) * jnp.sum(exps, -1, keepdims=True))
        probabilities = exps / total
        probabilities = rounded(probabilities, U * probabilities)
        attended = jnp.einsum("bhqk,bkhe->bqhe", probabilities, v)
        attended = rounded(
            attended, gamma(length) * jnp.einsum("bhqk,bkhe->bqhe", probabilities, jnp.abs(v))
        ).reshape(*q.shape[:2], d)
        out = _add(rounded, _matmul(rounded, attended, p("output_kernel")), p("output_bias"))
        x = _add(rounded, x[:, -1:] if last else x, out)
        h = _layer_norm(rounded, x, p("feedforward_norm_scale"), p("feedforward_norm_bias"))
        h = _add(rounded, _matmul(rounded, h, p("feedforward_in_kernel")), p("feedforward_in_bias"))
        phi = 0.5 * (1 + jax.scipy.special.erf(h / math.sqrt(2)))
        h = rounded(h * phi, (FUNCTION_ULPS + 3) * U * jnp.abs(h))  # erf, the scalings, the product
        h = _add(rounded, _matmul(rounded, h, p("feedforward_out_kernel")), p("feedforward_out_bias"))
        x = _add(rounded, x, h)
    state = _layer_norm(rounded, x, w["final_norm_scale"], w["final_norm_bias"])[:, -1]
    return _add(rounded, _matmul(rounded, state, w["item_embedding"].T), w["item_bias"])


def catalog_bound(
    weights: dict,
    history: np.ndarray,
    mask: np.ndarray,
    ratings: np.ndarray,
    *,
    num_blocks: int,
    num_heads: int,
):
    """``(scores, bound)`` [U, num_items]: the exact (float64) catalog scores of the float32
    ``weights`` and the first-order bound of a float32 computation's error in each."""
    with jax.enable_x64(True):
        w = {k: jnp.asarray(np.asarray(v, np.float32), jnp.float64) for k, v in weights.items()}
        inputs = tuple(jnp.asarray(a) for a in (history, mask, ratings))
        run = lambda deltas: _scores(  # noqa: E731
            w, *inputs, num_blocks=num_blocks, num_heads=num_heads, rounded=_Rounding(deltas)
        )
        probe = _Rounding()
        scores = _scores(w, *inputs, num_blocks=num_blocks, num_heads=num_heads, rounded=probe)
        zeros = [jnp.zeros_like(b) for b in probe.bounds]
        jacobians = jax.jacrev(run)(zeros)  # one [U, I, *shape] per rounded operation
        bound = sum(
            jnp.einsum("ui...,...->ui", jnp.abs(jac), r)
            for jac, r in zip(jacobians, probe.bounds, strict=True)
        )
        return np.asarray(scores), np.asarray(bound)
