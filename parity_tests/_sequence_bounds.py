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

Each operation also states how its backward pass rounds (``Rounding.read``): for every
operand, the rounding bound and the magnitude of the part of the operand's cotangent that
the operation produces, given the exact cotangent of its result. ``_sequence_gradient_bounds``
turns these into a bound on the float32 parameter gradients.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

U = 2.0**-24
SAFETY = 2.0
FUNCTION_ULPS = 4.0
# Each bound is compiled as one program (op by op, the catalog bound's replay would compile
# for 7 s) and runs once, in under a second: XLA's backend optimisations and fusion emitters
# would take longer to compile it than they save (the catalog bound 7 s against 2 s, the
# gradient bound 16 s against 3 s).
QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


def gamma(n):
    return n * U / (1 - n * U)


class Rounding:
    """Collects each rounded operation's perturbation (``delta``, zero) and rounding bound, and
    what each operation's backward pass produces (``reads``)."""

    def __init__(self, deltas=None):
        self.deltas, self.bounds, self.count, self.reads = deltas, [], 0, []

    def __call__(self, value, bound):
        """``value`` plus its perturbation; ``bound`` [value's shape] its rounding bound."""
        self.bounds.append(jax.lax.stop_gradient(jnp.broadcast_to(bound, value.shape)))
        delta = None if self.deltas is None else self.deltas[self.count]
        self.count += 1
        return value if delta is None else value + delta

    def read(self, operand, part):
        """The last rounded operation's backward pass gives ``operand`` a part of its cotangent:
        ``part(result_cotangent)`` is ``(rounding bound, magnitude)`` of that part [operand's
        shape]. A Python number is a constant: it has no cotangent."""
        if not isinstance(operand, float):
            self.reads.append((operand, self.count - 1, part))


def _summed(terms, shape, *, rounded_terms: bool):
    """``(rounding, magnitude)`` of the sums of ``|terms|`` down to ``shape`` (over the axes
    it was broadcast along): ``n`` terms a sum, ``n - 1`` additions, and each term's own
    rounding where it is a product (``rounded_terms``)."""
    magnitude = jnp.abs(terms)
    extra = magnitude.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, size in enumerate(shape) if size == 1 and magnitude.shape[extra + i] != 1
    )
    count = magnitude.size // max(math.prod(shape), 1)
    total = jnp.sum(magnitude, axis=axes).reshape(shape)
    return gamma(count - 1 + rounded_terms) * total, total


def _matmul(rounded, x, w):
    value = rounded(x @ w, gamma(x.shape[-1]) * (jnp.abs(x) @ jnp.abs(w)))
    rows = x.size // x.shape[-1]
    # x_bar = y_bar @ w.T sums w's columns; w_bar = x.T @ y_bar sums the rows of x.
    rounded.read(x, lambda y_bar: _terms(w.shape[-1], jnp.abs(y_bar) @ jnp.abs(w).T))
    rounded.read(w, lambda y_bar: _terms(rows, jnp.einsum("...i,...o->io", jnp.abs(x), jnp.abs(y_bar))))
    return value


def _terms(count, magnitude):
    """``(rounding, magnitude)`` of a sum of ``count`` products whose magnitudes add up to
    ``magnitude``."""
    return gamma(count) * magnitude, magnitude


def _add(rounded, a, b):
    value = a + b
    result = rounded(value, U * jnp.abs(value))
    for operand in (a, b):  # y_bar, summed over what the operand was broadcast along
        shape = jnp.shape(operand)
        rounded.read(operand, lambda y_bar, shape=shape: _summed(y_bar, shape, rounded_terms=False))
    return result


def _mul(rounded, a, b):
    value = a * b
    result = rounded(value, U * jnp.abs(value))
    # a_bar = y_bar * b (and b_bar = y_bar * a), summed over what a (b) was broadcast along.
    rounded.read(a, lambda y_bar: _summed(y_bar * b, jnp.shape(a), rounded_terms=True))
    rounded.read(b, lambda y_bar: _summed(y_bar * a, jnp.shape(b), rounded_terms=True))
    return result


def _mean(rounded, x):
    d = x.shape[-1]
    magnitude = jnp.mean(jnp.abs(x), -1, keepdims=True)
    result = rounded(jnp.mean(x, -1, keepdims=True), (gamma(d) + U) * magnitude)
    # x_bar = y_bar / d, one division.
    rounded.read(x, lambda y_bar: _terms(1, jnp.broadcast_to(jnp.abs(y_bar) / d, x.shape)))
    return result


def _rsqrt(rounded, x):
    value = jax.lax.rsqrt(x)
    result = rounded(value, FUNCTION_ULPS * U * value)
    # x_bar = -y_bar rsqrt(x)^3 / 2 from the rounded result: PyTorch cubes it (3 FUNCTION_ULPS
    # and two products), JAX divides it by x; then the product with y_bar.
    slope = 0.5 * value**3
    rounded.read(x, lambda y_bar: _terms(3 * FUNCTION_ULPS + 3, jnp.abs(y_bar) * slope))
    return result


def _layer_norm(rounded, x, scale, bias, eps=1e-6):
    mean = _mean(rounded, x)
    centred = _add(rounded, x, -mean)
    square = _mul(rounded, centred, centred)
    variance = _mean(rounded, square)
    inverse = _rsqrt(rounded, _add(rounded, variance, eps))
    return _add(rounded, _mul(rounded, _mul(rounded, centred, inverse), scale), bias)


def _gather(rounded, table, index):
    """Rows of ``table``: exact, but a site all the same, so that the backward pass can read
    its cotangent, which a scatter-add sums into each row (``n - 1`` additions for ``n``
    occurrences)."""
    rows = rounded(table[index], 0.0)
    counts = jnp.zeros(table.shape[0]).at[index].add(1.0).reshape(-1, *(1,) * (table.ndim - 1))

    def part(y_bar):
        magnitude = jnp.zeros(table.shape).at[index].add(jnp.abs(y_bar))
        return gamma(jnp.maximum(counts - 1, 0)) * magnitude, magnitude

    rounded.read(table, part)
    return rows


def _softmax(rounded, logits, allowed):
    """The attention weights of ``logits`` [..., keys] over the ``allowed`` keys.

    Backward, in both frameworks: ``x_bar = y (y_bar - s)``, ``s = sum_j y_j y_bar_j``; with
    ``S = sum_j y_j |y_bar_j| >= |s|``, its products, sum and difference round within
    ``y (gamma(keys) S + 2 u (|y_bar| + S))``. It reads the rounded ``y``, whose own roundings
    (``centred``, ``exp``, the sum, the division, counted as a reciprocal and a product) are
    within ``R = u (2 max|centred| + 2 FUNCTION_ULPS + 2) + gamma(keys)`` of ``y``; the replay's
    derivative, taken through the perturbed ``exp`` and sum, is within ``R y (|y_bar| + 2 S)``
    of the formula at the unrounded ``y``, and so is the formula at the rounded one.
    """
    keys = logits.shape[-1]
    top = jax.lax.stop_gradient(jnp.max(jnp.where(allowed, logits, -jnp.inf), -1, keepdims=True))
    centred = jnp.where(allowed, logits - top, -jnp.inf)
    centred = rounded(centred, U * jnp.where(allowed, jnp.abs(centred), 0.0))
    exps = jnp.exp(centred)
    exps = rounded(exps, FUNCTION_ULPS * U * exps)
    total = rounded(jnp.sum(exps, -1, keepdims=True), gamma(keys) * jnp.sum(exps, -1, keepdims=True))
    probabilities = exps / total
    y = probabilities  # before its perturbation: what the bound of the backward pass reads
    probabilities = rounded(probabilities, U * probabilities)
    spread = jnp.max(jnp.where(allowed, -centred, 0.0), -1, keepdims=True)
    own = U * (2 * spread + 2 * FUNCTION_ULPS + 2) + gamma(keys)

    def part(y_bar):
        weighted = jnp.sum(y * jnp.abs(y_bar), -1, keepdims=True)
        rounding = y * ((gamma(keys) + 2 * U + 4 * own) * weighted + (2 * U + 2 * own) * jnp.abs(y_bar))
        return rounding, y * (jnp.abs(y_bar) + weighted)

    rounded.read(logits, part)
    return probabilities


def _gelu(rounded, h):
    """The erf GELU ``h Phi(h)``. Its derivative ``Phi(a) + a pdf(a)`` is computed from an
    ``erf`` or ``erfc`` (within ``FUNCTION_ULPS`` u of its magnitude, at most 1) and an ``exp``
    (``FUNCTION_ULPS`` u, and ``a^2 / 2`` ulps from its argument's rounding) and the products,
    sums and float32 constants around them. Counted one by one (JAX: two parts, ``erfc`` of
    ``-a / sqrt 2``; PyTorch: one kernel, ``erf``), both lie within ``u |y_bar| ((FUNCTION_ULPS
    + 3) + (FUNCTION_ULPS + 10 + 3 a^2) |a| pdf(a))``."""
    phi = 0.5 * (1 + jax.scipy.special.erf(h / math.sqrt(2)))
    value = rounded(h * phi, (FUNCTION_ULPS + 3) * U * jnp.abs(h))  # erf, the scalings, the product
    tail = jnp.abs(h) * jnp.exp(-0.5 * h * h) / math.sqrt(2 * math.pi)
    slope = (FUNCTION_ULPS + 3) + (FUNCTION_ULPS + 10 + 3 * h * h) * tail
    rounded.read(h, lambda y_bar: (U * jnp.abs(y_bar) * slope, jnp.abs(y_bar) * (phi + tail)))
    return value


def _attention(rounded, q, k, v, allowed):
    """Heads' attention: ``q`` [B, Q, H, E], ``k``, ``v`` [B, K, H, E], ``allowed`` [B, 1, Q, K]."""
    width, keys, queries = q.shape[-1], k.shape[1], q.shape[1]
    dot = jnp.einsum("bqhe,bkhe->bhqk", q, k)
    dot = rounded(dot, gamma(width) * jnp.einsum("bqhe,bkhe->bhqk", jnp.abs(q), jnp.abs(k)))
    # q_bar sums over the keys, k_bar over the queries.
    rounded.read(q, lambda y_bar: _terms(keys, jnp.einsum("bhqk,bkhe->bqhe", jnp.abs(y_bar), jnp.abs(k))))
    rounded.read(k, lambda y_bar: _terms(queries, jnp.einsum("bhqk,bqhe->bkhe", jnp.abs(y_bar), jnp.abs(q))))
    # The float32 scale 1 / sqrt(width) (a power of two for width 4: the frameworks' division
    # by sqrt(width) is then the same product).
    logits = _mul(rounded, dot, float(np.float32(1 / math.sqrt(width))))
    probabilities = _softmax(rounded, logits, allowed)
    attended = jnp.einsum("bhqk,bkhe->bqhe", probabilities, v)
    attended = rounded(attended, gamma(keys) * jnp.einsum("bhqk,bkhe->bqhe", probabilities, jnp.abs(v)))
    # p_bar sums over the width, v_bar over the queries.
    rounded.read(
        probabilities,
        lambda y_bar: _terms(width, jnp.einsum("bqhe,bkhe->bhqk", jnp.abs(y_bar), jnp.abs(v))),
    )
    rounded.read(
        v, lambda y_bar: _terms(queries, jnp.einsum("bhqk,bqhe->bkhe", probabilities, jnp.abs(y_bar)))
    )
    return attended.reshape(*q.shape[:2], -1)


def encode(weights, history, mask, ratings, *, num_blocks: int, num_heads: int, rounded, newest_only: bool):
    """The encoder's states [B, T, d] (``SequenceScorer.encode``), or [B, 1, d] ``newest_only``."""
    w = weights
    d = w["item_embedding"].shape[1]
    length = history.shape[1]
    # The frameworks multiply by sqrt(d) rounded to float32.
    x = _mul(rounded, _gather(rounded, w["item_embedding"], history), float(np.float32(math.sqrt(d))))
    x = _add(rounded, x, w["position_embedding"][-length:])
    if "rating_embedding" in w:  # ratings 1..N read as rows 0..N-1
        levels = w["rating_embedding"].shape[0]
        rows = jnp.clip(ratings.astype(jnp.int32), 1, levels) - 1
        x = _add(rounded, x, _gather(rounded, w["rating_embedding"], rows))
    x = jnp.where(mask[..., None], x, 0.0)
    allowed = (jnp.tril(jnp.ones((length, length), bool)) & mask[:, None, :]) | jnp.eye(length, dtype=bool)
    allowed = allowed[:, None]
    width = d // num_heads
    for block in range(num_blocks):
        last = newest_only and block == num_blocks - 1
        p = lambda name, block=block: w[f"block{block}_{name}"]  # noqa: E731
        h = _layer_norm(rounded, x, p("attention_norm_scale"), p("attention_norm_bias"))
        queries = h[:, -1:] if last else h

        def project(part, rows, p=p):
            out = _add(rounded, _matmul(rounded, rows, p(f"{part}_kernel")), p(f"{part}_bias"))
            return out.reshape(*rows.shape[:2], num_heads, width)

        q, k, v = project("query", queries), project("key", h), project("value", h)
        attended = _attention(rounded, q, k, v, allowed[:, :, -1:] if last else allowed)
        out = _add(rounded, _matmul(rounded, attended, p("output_kernel")), p("output_bias"))
        x = _add(rounded, x[:, -1:] if last else x, out)
        h = _layer_norm(rounded, x, p("feedforward_norm_scale"), p("feedforward_norm_bias"))
        h = _add(rounded, _matmul(rounded, h, p("feedforward_in_kernel")), p("feedforward_in_bias"))
        h = _add(
            rounded,
            _matmul(rounded, _gelu(rounded, h), p("feedforward_out_kernel")),
            p("feedforward_out_bias"),
        )
        x = _add(rounded, x, h)
    return _layer_norm(rounded, x, w["final_norm_scale"], w["final_norm_bias"])


def catalog_scores(rounded, weights, states):
    """Scores of every item [..., num_items] (``score_catalog``)."""
    return _add(rounded, _matmul(rounded, states, weights["item_embedding"].T), weights["item_bias"])


def item_scores(rounded, weights, states, item_ids):
    """Scores [B, T, L] of each slot's items ``item_ids`` [B, T, L] (``score_items``)."""
    items = _gather(rounded, weights["item_embedding"], item_ids)
    dot = jnp.einsum("btd,btld->btl", states, items)
    dot = rounded(dot, gamma(states.shape[-1]) * jnp.einsum("btd,btld->btl", jnp.abs(states), jnp.abs(items)))
    # states_bar sums over the list; items_bar is one product an entry.
    rounded.read(
        states,
        lambda y_bar: _terms(item_ids.shape[-1], jnp.einsum("btl,btld->btd", jnp.abs(y_bar), jnp.abs(items))),
    )
    rounded.read(items, lambda y_bar: _terms(1, jnp.abs(y_bar)[..., None] * jnp.abs(states)[:, :, None]))
    return _add(rounded, dot, _gather(rounded, weights["item_bias"], item_ids))


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
        run = jax.jit(
            functools.partial(_scores_and_bound, num_blocks=num_blocks, num_heads=num_heads),
            compiler_options=QUICK_COMPILE,
        )
        scores, bound = run(w, *inputs)
        return np.asarray(scores), np.asarray(bound)


def _scores_and_bound(w, history, mask, ratings, *, num_blocks: int, num_heads: int):
    """``catalog_bound`` on float64 arrays, traced whole for one compilation."""

    def run(deltas, rounded=None):
        rounded = Rounding(deltas) if rounded is None else rounded
        states = encode(
            w,
            history,
            mask,
            ratings,
            num_blocks=num_blocks,
            num_heads=num_heads,
            rounded=rounded,
            newest_only=True,
        )
        return catalog_scores(rounded, w, states[:, -1])

    probe = Rounding()
    scores = run(None, probe)
    zeros = [jnp.zeros_like(b) for b in probe.bounds]
    jacobians = jax.jacrev(run)(zeros)  # one [U, I, *shape] per rounded operation
    bound = sum(
        jnp.einsum("ui...,...->ui", jnp.abs(jac), r) for jac, r in zip(jacobians, probe.bounds, strict=True)
    )
    return scores, bound
