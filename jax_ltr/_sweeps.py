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


def pair_terms(margin, counted):
    """-log sigma(margin) = softplus(-margin), for the pairs that count; 0 elsewhere."""
    return jnp.where(counted, jnp.logaddexp(-margin, 0.0), 0.0)


PAIR_BLOCK = 8  # items per block in the all-pairs sweep; the fastest on CPU by measurement


def _all_pairs(scores, labels, where, items, *, block: int, with_grad: bool, weighting):
    """Sum of ``lambda_ij softplus(s_loser - s_winner)`` over each list's valid pairs with
    different labels (``lambda_ij = 1`` for ``weighting=None``).

    ``scores``, ``labels``, ``where``: [N, L]; ``items``: the per-item values the pair weight
    reads (``_pair_weight``), a tuple of [N, L] arrays. Returns per-list sums [N], the number
    of counted pairs [N] and, with ``with_grad``, d(per-list sum)/d(scores) [N, L] (the weights
    held constant: they depend on labels and ranks only).

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

    laid_out = [columns(x) for x in (scores, labels, where, *items)]
    doubled = [jnp.concatenate([x, x], axis=0) for x in laid_out]
    row_s, row_y, row_w, *row_items = (x.reshape(blocks, block, 1, n) for x in laid_out)
    upper = (jnp.arange(block)[:, None] < jnp.arange(block)[None, :])[:, :, None]
    block_index = jnp.arange(blocks)[:, None, None, None]
    dtype = laid_out[0].dtype

    def step(carry, d):
        total, count, grad = carry
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
        weight = None
        if weighting is not None:
            weight = _pair_weight(weighting, (row_y, *row_items), (col_y, *col_items))
            terms = weight * terms
        total = total + jnp.where(counted, terms, 0.0).sum((0, 1, 2))
        count = count + counted.sum((0, 1, 2), dtype=dtype)  # float: no int32 wrap-around
        if with_grad:  # d softplus(-margin) / d margin = -sigma(-margin)
            sigma = jnp.where(margin >= 0, decay, 1.0) / (1.0 + decay)
            pull = sign * sigma if weight is None else weight * sign * sigma
            pull = jnp.where(counted, pull, 0.0)
            rows = -pull.sum(2).reshape(padded, n)
            cols = pull.sum(1).reshape(padded, n)
            grad = grad + rows + jnp.roll(cols, d * block, axis=0)
        return (total, count, grad), None

    init = (
        jnp.zeros(n, dtype),
        jnp.zeros(n, dtype),
        jnp.zeros((padded, n) if with_grad else (0, n), dtype),
    )
    (total, count, grad), _ = lax.scan(step, init, jnp.arange(blocks // 2 + 1))
    return total, count, (grad[:length].T if with_grad else None)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def all_pairs_loss(scores, labels, where, items, block, weighting):
    sweep = _all_pairs(scores, labels, where, items, block=block, with_grad=False, weighting=weighting)
    return sweep[0], sweep[1]


def _all_pairs_loss_fwd(scores, labels, where, items, block, weighting):
    total, count, grad = _all_pairs(
        scores, labels, where, items, block=block, with_grad=True, weighting=weighting
    )
    return (total, count), grad


def _all_pairs_loss_bwd(block, weighting, grad, cotangents):
    return cotangents[0][:, None] * grad, None, None, None


all_pairs_loss.defvjp(_all_pairs_loss_fwd, _all_pairs_loss_bwd)


def _pair_weight(weighting, row, col):
    """LambdaLoss's ``lambda_ij`` from two items' ``(label, scaled gain, rank, discount)``,
    ``discount = d(rank) = 1 / log2(1 + rank)`` (``lambda_loss``). The discount gaps are
    written without cancellation and symmetrically in ``i, j``: ``|d(r_i) - d(r_j)| = log1p(|r_i
    - r_j| / (1 + min(r_i, r_j))) d(r_i) d(r_j) / ln 2`` and ``d(k) - d(k + 1) = log1p(1 / (k +
    1)) / (ln 2 log2(k + 1) log2(k + 2))``: each within a few ulps of itself, where the plain
    differences lose ``d / (d(k) - d(k + 1))`` (about 10^3 at k = 200)."""
    kind, mu = weighting
    if kind == "label_diff":
        return jnp.abs(row[0] - col[0])
    _, gain_i, rank_i, discount_i = row
    _, gain_j, rank_j, discount_j = col
    gain_gap = jnp.abs(gain_i - gain_j)
    rank_gap = jnp.abs(rank_i - rank_j)
    parts = []
    if kind in ("dcg", "ndcg_loss2++"):
        ratio = jnp.log1p(rank_gap / (1.0 + jnp.minimum(rank_i, rank_j)))
        parts.append(ratio * discount_i * discount_j / math.log(2.0))
    if kind in ("ndcg_loss2", "ndcg_loss2++"):
        gap = jnp.maximum(rank_gap, 1.0)  # 0 only for i = j, never counted
        delta = jnp.log1p(1.0 / (gap + 1.0)) / (math.log(2.0) * jnp.log2(gap + 1.0) * jnp.log2(gap + 2.0))
        parts.append(delta if kind == "ndcg_loss2" else mu * delta)
    return gain_gap * (parts[0] if len(parts) == 1 else parts[0] + parts[1])


RANK_BLOCK = 16  # items per block of the smooth-rank sweep


def _rank_sweep(scores, where, temperature, block, term, values=None):
    """``sum_j term(p_ij, v_j)`` over the valid ``j`` of each list, one block of ``j`` at a
    time: [N, L, block] values per step, never [N, L, L]. ``p_ij = sigma((s_j - s_i) /
    temperature)``; ``v_j`` is the block of ``values`` ([N, L], None: none) as [N, block]."""
    n, length = scores.shape
    blocks = -(-length // block)

    def columns(x):  # [N, L] -> [blocks, N, block], padding invalid
        padded = jnp.pad(x, ((0, 0), (0, blocks * block - length)))
        return jnp.moveaxis(padded.reshape(n, blocks, block), 1, 0)

    def step(total, column):
        s_j, w_j, v_j = column
        p = jax.nn.sigmoid((s_j[:, None, :] - scores[:, :, None]) / temperature)
        return total + jnp.sum(jnp.where(w_j[:, None, :], term(p, v_j), 0.0), axis=-1), None

    column_values = None if values is None else columns(values)
    init = jnp.zeros((n, length), scores.dtype)
    total, _ = lax.scan(step, init, (columns(scores), columns(where), column_values))
    return total


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def smooth_ranks(scores, where, temperature, block):
    """``1 + sum_{valid j != i} sigma((s_j - s_i) / temperature)`` for each item: [N, L]."""
    total = _rank_sweep(scores, where, temperature, block, lambda p, _: p)
    return 1.0 + total - jnp.where(where, 0.5, 0.0)  # the sweep counted j = i as sigma(0)


def _smooth_ranks_fwd(scores, where, temperature, block):
    return smooth_ranks(scores, where, temperature, block), (scores, where)


def _smooth_ranks_bwd(temperature, block, residuals, cotangent):
    # d r_i / d s_k = sigma'((s_k - s_i) / T) / T for k != i, and minus the sum of those for
    # k = i. sigma' is even, so d/ds_k sum_i c_i r_i = (1/T) sum_{valid j} sigma'((s_j - s_k) /
    # T) (c_j - c_k): one sweep, in which j = k adds exactly 0.
    scores, where = residuals

    def term(p, c_j):
        return p * (1.0 - p) * (c_j[:, None, :] - cotangent[:, :, None])

    grad = _rank_sweep(scores, where, temperature, block, term, values=cotangent) / temperature
    return jnp.where(where, grad, 0.0), None


smooth_ranks.defvjp(_smooth_ranks_fwd, _smooth_ranks_bwd)
