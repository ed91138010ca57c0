"""The blocked sweeps behind the pairwise losses and ApproxNDCG: every pair of a list visited
in blocks of items, never a [B, L, L] array, each with a custom VJP of the same form.

``all_pairs_loss`` sums a (weighted) logistic loss over all pairs with different labels,
value and gradient in one pass (``pairwise_pl_loss``, ``lambda_loss``); ``smooth_ranks`` sums
sigmoids of score differences (``approx_ndcg_loss``).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jax_ltr._label_order import sort_keys


def pair_terms(margin, counted):
    """-log sigma(margin) = softplus(-margin), for the pairs that count; 0 elsewhere."""
    return jnp.where(counted, jnp.logaddexp(-margin, 0.0), 0.0)


PAIR_BLOCK = 8  # items per block in the all-pairs sweep; the fastest on CPU by measurement


def _all_pairs(scores, labels, where, items, *, block: int, score_grad: bool, label_grad: bool, weighting):
    """Sum of ``lambda_ij softplus(s_loser - s_winner)`` over each list's valid pairs with
    different labels (``lambda_ij = 1`` for ``weighting=None``).

    ``scores``, ``labels``, ``where``: [N, L]; ``items``: the per-item values the pair weight
    reads (``_pair_weight``), a tuple of [N, L] arrays. Returns per-list sums [N], the number
    of counted pairs [N] and two gradients of the per-list sums, [N, L] each or None: with
    ``score_grad``, d/d(scores) (the weights held constant: they depend on labels and ranks
    only); with ``label_grad`` and a weighting, d/d(the values whose gap scales the weight:
    the labels for "label_diff", ``items[0]``, the scaled gains, otherwise).

    Every unordered pair is visited once: the list is cut into blocks of ``block`` items,
    and step d pairs block b with block (b + d) mod n_blocks for d = 0 .. n_blocks // 2
    (step 0 only pairs i < j within a block; with an even block count the last step only
    takes b < n_blocks / 2). Each step holds [L, block, N] values — memory O(L·block·N), not
    O(L²·N) — and the gradient is summed in the same pass, so the backward pass stores one
    [N, L] array and is a multiply. Arrays are laid out list-axis first with N innermost,
    which vectorises across lists. A pair weight is symmetric, so one visit serves both
    items' gradients.
    """
    n, length = scores.shape
    blocks = -(-length // block)
    padded = blocks * block

    def columns(x):  # [N, L] -> [padded, N], padding invalid
        return jnp.pad(x, ((0, 0), (0, padded - length))).T

    # Labels are compared by their order-preserving integer keys: XLA on CPU reads a subnormal
    # float as 0 in a comparison, which would tie 1e-40 with 0 where the label order and
    # PyTorch tell them apart. Their values enter only a "label_diff" pair weight, as its gap.
    keys = sort_keys(labels, where, descending=False)
    if weighting is not None and weighting[0] == "label_diff":
        items = (labels, *items)
    laid_out = [columns(x) for x in (scores, keys, where, *items)]
    doubled = [jnp.concatenate([x, x], axis=0) for x in laid_out]
    row_s, row_y, row_w, *row_items = (x.reshape(blocks, block, 1, n) for x in laid_out)
    upper = (jnp.arange(block)[:, None] < jnp.arange(block)[None, :])[:, :, None]
    block_index = jnp.arange(blocks)[:, None, None, None]
    dtype = laid_out[0].dtype
    label_grad = label_grad and weighting is not None  # unweighted pairs: labels only compare

    def step(carry, d):
        total, count, grad, weight_grad = carry
        col_s, col_y, col_w, *col_items = (
            lax.dynamic_slice_in_dim(x, d * block, padded, axis=0).reshape(blocks, 1, block, n)
            for x in doubled
        )
        counted = row_w & col_w & (row_y != col_y) & ((d != 0) | upper)
        if blocks % 2 == 0:
            counted &= (d != blocks // 2) | (block_index < blocks // 2)
        sign = jnp.where(row_y > col_y, 1.0, -1.0).astype(dtype)
        margin = sign * (row_s - col_s)  # winner minus loser
        decay = jnp.exp(-jnp.abs(margin))
        terms = jnp.maximum(-margin, 0.0) + jnp.log1p(decay)

        def add_pairwise(into, pull):  # each pair's pull on its row item, minus it on its column item
            rows = pull.sum(2).reshape(padded, n)
            cols = pull.sum(1).reshape(padded, n)
            return into + rows - jnp.roll(cols, d * block, axis=0)

        weight = None
        if weighting is not None:
            gap, factor = _pair_weight(weighting, row_items, col_items)
            weight = jnp.abs(gap) if factor is None else jnp.abs(gap) * factor
            if label_grad:  # d |gap| / d(row value) = sign(gap), and minus that for the column's
                slope = jnp.sign(gap) if factor is None else jnp.sign(gap) * factor
                weight_grad = add_pairwise(weight_grad, jnp.where(counted, slope * terms, 0.0))
            terms = weight * terms
        total = total + jnp.where(counted, terms, 0.0).sum((0, 1, 2))
        count = count + counted.sum((0, 1, 2), dtype=dtype)  # float: no int32 wrap-around
        if score_grad:  # d softplus(-margin) / d margin = -sigma(-margin)
            sigma = jnp.where(margin >= 0, decay, 1.0) / (1.0 + decay)
            pull = sign * sigma if weight is None else weight * sign * sigma
            grad = add_pairwise(grad, -jnp.where(counted, pull, 0.0))
        return (total, count, grad, weight_grad), None

    def gradient_sum(wanted):
        return jnp.zeros((padded, n) if wanted else (0, n), dtype)

    init = (jnp.zeros(n, dtype), jnp.zeros(n, dtype), gradient_sum(score_grad), gradient_sum(label_grad))
    (total, count, grad, weight_grad), _ = lax.scan(step, init, jnp.arange(blocks // 2 + 1))
    return (
        total,
        count,
        grad[:length].T if score_grad else None,
        weight_grad[:length].T if label_grad else None,
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def all_pairs_loss(scores, labels, where, items, block, weighting):
    """``(per-list sums [N], counted pairs [N])`` of ``_all_pairs``, differentiable in reverse
    mode with respect to the scores and to what the weights are made of (the labels for
    "label_diff", the scaled gains ``items[0]`` otherwise; the ranks are constants)."""
    sweep = _all_pairs(
        scores, labels, where, items, block=block, score_grad=False, label_grad=False, weighting=weighting
    )
    return sweep[0], sweep[1]


def _all_pairs_loss_fwd(scores, labels, where, items, block, weighting):
    # With symbolic zeros every array argument comes as (value, perturbed): each gradient is
    # summed in the sweep only when its input is differentiated, so training (scores only)
    # pays nothing for the labels' gradient.
    label_grad = labels.perturbed or any(item.perturbed for item in items)
    total, count, grad, weight_grad = _all_pairs(
        scores.value,
        labels.value,
        where.value,
        tuple(item.value for item in items),
        block=block,
        score_grad=scores.perturbed,
        label_grad=label_grad,
        weighting=weighting,
    )
    return (total, count), (grad, weight_grad, tuple(None for _ in items))


def _all_pairs_loss_bwd(block, weighting, residuals, cotangents):
    grad, weight_grad, no_items = residuals  # no_items: a None per item, the items' structure
    cotangent = cotangents[0]  # the pair counts are piecewise constant: no gradient through them
    if isinstance(cotangent, SymbolicZero):
        return None, None, None, no_items

    def scaled(g):
        return None if g is None else cotangent[:, None] * g

    if weighting is None or weighting[0] == "label_diff":
        return scaled(grad), scaled(weight_grad), None, no_items
    return scaled(grad), None, None, (scaled(weight_grad), *no_items[1:])


all_pairs_loss.defvjp(_all_pairs_loss_fwd, _all_pairs_loss_bwd, symbolic_zeros=True)


def _pair_weight(weighting, row, col):
    """LambdaLoss's ``lambda_ij = |gap| * factor`` from two items' ``(label,)`` ("label_diff")
    or ``(scaled gain, rank, discount)``, ``discount = d(rank) = 1 / log2(1 + rank)``
    (``lambda_loss``), as ``(gap, factor)``: ``gap`` the row's label minus the column's
    ("label_diff", factor None: 1) or their scaled gains' difference, ``factor`` from the ranks
    alone. The discount gaps are written without cancellation and symmetrically in ``i, j``:
    ``|d(r_i) - d(r_j)| = log1p(|r_i - r_j| / (1 + min(r_i, r_j))) d(r_i) d(r_j) / ln 2`` and
    ``d(k) - d(k + 1) = log1p(1 / (k + 1)) / (ln 2 log2(k + 1) log2(k + 2))``: each within a
    few ulps of itself, where the plain differences lose ``d / (d(k) - d(k + 1))`` (about 10^3
    at k = 200)."""
    kind, mu = weighting
    if kind == "label_diff":
        return row[0] - col[0], None
    gain_i, rank_i, discount_i = row
    gain_j, rank_j, discount_j = col
    rank_gap = jnp.abs(rank_i - rank_j)
    parts = []
    if kind in ("dcg", "ndcg_loss2++"):
        ratio = jnp.log1p(rank_gap / (1.0 + jnp.minimum(rank_i, rank_j)))
        parts.append(ratio * discount_i * discount_j / math.log(2.0))
    if kind in ("ndcg_loss2", "ndcg_loss2++"):
        gap = jnp.maximum(rank_gap, 1.0)  # 0 only for i = j, never counted
        delta = jnp.log1p(1.0 / (gap + 1.0)) / (math.log(2.0) * jnp.log2(gap + 1.0) * jnp.log2(gap + 2.0))
        parts.append(delta if kind == "ndcg_loss2" else mu * delta)
    return gain_i - gain_j, (parts[0] if len(parts) == 1 else parts[0] + parts[1])


RANK_BLOCK = 16  # items per block of the smooth-rank sweep


def _rank_sweep(scores, where, inverse_temperature, block, term, values=None):
    """``sum_j term(p_ij, v_j)`` over the valid ``j != i`` of each list, one block of ``j`` at a
    time: [N, L, block] values per step, never [N, L, L]. ``p_ij = sigma((s_j - s_i) / T)``,
    computed as a product with ``1 / T`` (a normal float32 number, which XLA on CPU keeps, where
    a subnormal ``T`` would be read as 0); ``v_j`` is the block of ``values`` ([N, L], None:
    none) as [N, block]. The pair of an item with itself is left out, not counted and taken
    off: at an infinite score its difference is inf - inf, NaN."""
    n, length = scores.shape
    blocks = -(-length // block)

    def columns(x):  # [N, L] -> [blocks, N, block], padding invalid
        padded = jnp.pad(x, ((0, 0), (0, blocks * block - length)))
        return jnp.moveaxis(padded.reshape(n, blocks, block), 1, 0)

    position = jnp.arange(length)[:, None]

    def step(total, column):
        s_j, w_j, start, v_j = column
        other = start + jnp.arange(block) != position  # [L, block]: j is not i (padding never is)
        p = jax.nn.sigmoid((s_j[:, None, :] - scores[:, :, None]) * inverse_temperature)
        return total + jnp.sum(jnp.where(w_j[:, None, :] & other, term(p, v_j), 0.0), axis=-1), None

    column_values = None if values is None else columns(values)
    init = jnp.zeros((n, length), scores.dtype)
    starts = jnp.arange(blocks) * block
    total, _ = lax.scan(step, init, (columns(scores), columns(where), starts, column_values))
    return total


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def smooth_ranks(scores, where, inverse_temperature, block):
    """``1 + sum_{valid j != i} sigma((s_j - s_i) / T)`` for each item: [N, L], given ``1 / T``."""
    return 1.0 + _rank_sweep(scores, where, inverse_temperature, block, lambda p, _: p)


def _smooth_ranks_fwd(scores, where, inverse_temperature, block):
    return smooth_ranks(scores, where, inverse_temperature, block), (scores, where)


def _smooth_ranks_bwd(inverse_temperature, block, residuals, cotangent):
    # d r_i / d s_k = sigma'((s_k - s_i) / T) / T for k != i, and minus the sum of those for
    # k = i. sigma' is even, so d/ds_k sum_i c_i r_i = (1/T) sum_{valid j} sigma'((s_j - s_k) /
    # T) (c_j - c_k): one sweep (which leaves out j = k, whose term is 0).
    scores, where = residuals

    def term(p, c_j):
        return p * (1.0 - p) * (c_j[:, None, :] - cotangent[:, :, None])

    grad = _rank_sweep(scores, where, inverse_temperature, block, term, values=cotangent)
    grad = grad * inverse_temperature
    return jnp.where(where, grad, 0.0), None


smooth_ranks.defvjp(_smooth_ranks_fwd, _smooth_ranks_bwd)
