"""The scorers in Flax Linen: the two-tower MLP, the dot-product two tower and the sequence
encoder (a causal transformer over the user's history as the user tower).

Linen keeps parameters a plain pytree outside the module, which is what a pure, donated
``train_step``, the optax state and the weight converter all want; nothing here needs NNX's
mutable objects. Each model scores lists (``__call__``: user ids [B], item ids [B, L] →
[B, L]) and the whole catalog (``catalog_scores``: user ids [U] → [U, num_items]), and
declares where its canonical parameters (``ltr_common.models``) live (``LAYOUT``).
"""

from __future__ import annotations

import math
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jax_ltr._utils import check_ids
from ltr_common.models import sequence_encoder
from ltr_common.weights import Layout, identity_layout

xavier = nn.initializers.xavier_uniform()
CATALOG_CHUNK = 64  # users scored at once by the MLP over the catalog: [64, I, H] activations


class TwoTowerScorer(nn.Module):
    """Scores items for users with one hidden ReLU layer over the concatenated embeddings.

    The first layer's kernel is split into its user and item halves, so the user half is
    applied once per list rather than once per item: the same function, B*L*d fewer
    multiply-adds.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> model = TwoTowerScorer(num_users=5, num_items=7, embedding_dim=4, mlp_hidden=8)
      >>> users, items = jnp.array([0, 4]), jnp.array([[1, 2, 3], [6, 0, 0]])
      >>> params = model.init(jax.random.key(0), users, items)["params"]
      >>> model.apply({"params": params}, users, items).shape
      (2, 3)
      >>> model.apply({"params": params}, users, method=model.catalog_scores).shape
      (2, 7)
    """

    # Where each canonical parameter (ltr_common.models.two_tower_mlp) lives in the params tree.
    LAYOUT: ClassVar[Layout] = {
        "user_embedding": (("user_embedding", "embedding"), False),
        "item_embedding": (("item_embedding", "embedding"), False),
        "hidden_kernel": (("hidden_kernel",), False),
        "hidden_bias": (("hidden_bias",), False),
        "output_kernel": (("output", "kernel"), False),
        "output_bias": (("output", "bias"), False),
    }

    num_users: int
    num_items: int
    embedding_dim: int = 64
    mlp_hidden: int = 128
    dropout: float = 0.1

    def setup(self):
        d, h = self.embedding_dim, self.mlp_hidden
        self.user_embedding = nn.Embed(self.num_users, d, embedding_init=xavier)
        self.item_embedding = nn.Embed(self.num_items, d, embedding_init=xavier)
        self.hidden_kernel = self.param("hidden_kernel", xavier, (2 * d, h))
        self.hidden_bias = self.param("hidden_bias", nn.initializers.zeros, (h,))
        self.output = nn.Dense(1, kernel_init=xavier, bias_init=nn.initializers.zeros)
        self.dropout_layer = Dropout(self.dropout)

    def _halves(self, user_ids, item_ids):
        check_ids(user_ids, self.num_users, "user_ids")
        user_part = self.user_embedding(user_ids) @ self.hidden_kernel[: self.embedding_dim]
        item_part = self.item_embedding(item_ids) @ self.hidden_kernel[self.embedding_dim :]
        return user_part, item_part

    def _score(self, hidden, train: bool):
        hidden = self.dropout_layer(nn.relu(hidden), deterministic=not train)
        return jnp.squeeze(self.output(hidden), -1)

    def __call__(self, user_ids, item_ids, *, train: bool = False):
        """``list_scores``: user ids [B] and item ids [B, L] to scores [B, L]."""
        check_ids(item_ids, self.num_items, "item_ids")
        user_part, item_part = self._halves(user_ids, item_ids)  # [B, H], [B, L, H]
        return self._score(item_part + user_part[:, None, :] + self.hidden_bias, train)

    def catalog_scores(self, user_ids):
        """User ids [U] to scores of every item [U, num_items], ``CATALOG_CHUNK`` users at a time."""
        user_part, item_part = self._halves(user_ids, jnp.arange(self.num_items))  # [U, H], [I, H]
        count = user_ids.shape[0]
        chunks = -(-count // CATALOG_CHUNK)
        padded = jnp.pad(user_part, ((0, chunks * CATALOG_CHUNK - count), (0, 0)))
        rows = padded.reshape(chunks, CATALOG_CHUNK, -1)
        scores = lax.map(lambda u: self._score(item_part + u[:, None, :] + self.hidden_bias, False), rows)
        return scores.reshape(chunks * CATALOG_CHUNK, -1)[:count]


# A dot model's lists this share of the catalog wide, or wider, are scored through the
# catalog's product (``DotProductScorer.__call__``): on a 2-core CPU the two ways cost the same
# at about 32 × 210 of 1,682 items.
CATALOG_PRODUCT_LISTS = 8


class DotProductScorer(nn.Module):
    """A true two tower: ``s(u, i) = <e_u, e_i> + b_i + b_u``.

    The item bias carries an item's overall appeal; the user bias, which no ranking of a
    user's items sees, lets a pointwise term fit a user's rating level. The catalog is one
    matrix product, and the embeddings serve nearest-neighbour search as they are (append
    ``b_i`` to the item vector and a 1 to the user vector).

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> model = DotProductScorer(num_users=5, num_items=7, embedding_dim=4)
      >>> users, items = jnp.array([0, 4]), jnp.array([[1, 2, 3], [6, 0, 0]])
      >>> params = model.init(jax.random.key(0), users, items)["params"]
      >>> model.apply({"params": params}, users, items).shape
      (2, 3)
    """

    LAYOUT: ClassVar[Layout] = {
        "user_embedding": (("user_embedding", "embedding"), False),
        "item_embedding": (("item_embedding", "embedding"), False),
        "user_bias": (("user_bias",), False),
        "item_bias": (("item_bias",), False),
    }

    num_users: int
    num_items: int
    embedding_dim: int = 64

    def setup(self):
        self.user_embedding = nn.Embed(self.num_users, self.embedding_dim, embedding_init=xavier)
        self.item_embedding = nn.Embed(self.num_items, self.embedding_dim, embedding_init=xavier)
        self.user_bias = self.param("user_bias", nn.initializers.zeros, (self.num_users,))
        self.item_bias = self.param("item_bias", nn.initializers.zeros, (self.num_items,))

    def __call__(self, user_ids, item_ids, *, train: bool = False):
        """``list_scores``: user ids [B] and item ids [B, L] to scores [B, L].

        Lists at least ``1 / CATALOG_PRODUCT_LISTS`` of the catalog wide are read from each
        user's scores of the whole catalog, one matrix product: its gradient is two more
        dense products and a scatter of B·L scores, where gathering each item's embedding
        takes a scatter-add of B·L embedding rows into the table (the cost of long lists on
        a CPU: at 32 × 768 of ML-100K's 1,682 items, 0.28 ms against 1.6 ms for value and
        gradient). The same sums, in another order; on a GPU both forms are dot products at
        JAX's default matmul precision (``jax_default_matmul_precision``), which may round
        float32 inputs to TF32 there — not measured on a GPU."""
        check_ids(item_ids, self.num_items, "item_ids")
        users = self.user_embedding(check_ids(user_ids, self.num_users, "user_ids"))
        if item_ids.shape[-1] * CATALOG_PRODUCT_LISTS >= self.num_items:
            every = users @ self.item_embedding.embedding.T + self.item_bias
            return jnp.take_along_axis(every, item_ids, axis=-1) + self.user_bias[user_ids][:, None]
        dot = jnp.einsum("bd,bld->bl", users, self.item_embedding(item_ids))
        return dot + self.item_bias[item_ids] + self.user_bias[user_ids][:, None]

    def catalog_scores(self, user_ids):
        """User ids [U] to scores of every item [U, num_items]: one matrix product."""
        users = self.user_embedding(check_ids(user_ids, self.num_users, "user_ids"))
        return users @ self.item_embedding.embedding.T + self.item_bias + self.user_bias[user_ids][:, None]


def layer_norm(x, scale, bias, *, eps: float = 1e-6):
    """``(x - mean) / sqrt(var + eps) * scale + bias`` over the last axis, the variance from
    the centred values (two passes, as PyTorch's ``layer_norm``)."""
    centred = x - jnp.mean(x, axis=-1, keepdims=True)
    variance = jnp.mean(centred * centred, axis=-1, keepdims=True)
    return centred * lax.rsqrt(variance + eps) * scale + bias


def rating_index(ratings, levels: int):
    """Ratings 1..``levels`` (checked on the host: ``ltr_common.sequences.check_ratings``) as
    rows of the rating embedding, 0..levels - 1; padding (rating 0) reads row 0, masked after."""
    return jnp.clip(ratings.astype(jnp.int32), 1, levels) - 1


class Dropout(nn.Module):
    """Inverted dropout whose masks cost half the random bits of ``flax.linen.Dropout``: each
    32-bit draw decides two entries, by its two 16-bit halves. The rate is rounded to a
    multiple of 2^-16 (0.2 drops with probability 13107 / 65536 = 0.199997), and the kept
    entries are scaled by the exact inverse of the rounded keep probability. On a CPU the
    draws cost more than the rest of the step's dropout, and halving them shortens the
    sequence model's training step markedly (docs/performance.md)."""

    rate: float

    @nn.compact
    def __call__(self, x, *, deterministic: bool):
        dropped = round(self.rate * 2**16)
        if deterministic or dropped == 0:
            return x
        if dropped >= 2**16:  # a rate within 2^-17 of 1 drops everything
            return jnp.zeros_like(x)
        width = x.shape[-1]
        words = jax.random.bits(self.make_rng("dropout"), (*x.shape[:-1], -(-width // 2)), jnp.uint32)
        halves = jnp.concatenate([words & 0xFFFF, words >> 16], axis=-1)[..., :width]
        keep = 1.0 - dropped / 2**16
        return jnp.where(halves >= dropped, x / keep, 0.0).astype(x.dtype)


def attention_mask(valid, segments=None):
    """[B, 1, T, T] bool: query ``q`` sees key ``k`` when ``k <= q`` and ``k`` is a real item
    (of the same user, in a packed row: ``segments`` [B, T] equal), and always itself (no
    empty softmax). A padding slot's state is never read: in a packed row, where padding
    takes segment 0, it may also see user 0's items."""
    length = valid.shape[-1]
    sees = jnp.tril(jnp.ones((length, length), bool)) & valid[:, None, :]
    if segments is not None:
        sees = sees & (segments[:, :, None] == segments[:, None, :])
    return (sees | jnp.eye(length, dtype=bool))[:, None]


class SequenceScorer(nn.Module):
    """The user vector from the user's history: ``s(u, i) = <h_u, e_i> + b_i``.

    ``h_u`` is a causal transformer's state at the newest item of the user's history
    (``history`` [B, T] item ids, oldest first, left-padded so the newest sits at slot
    T - 1; ``history_mask`` [B, T] True at real items, whose padding slots hold an item id
    too, 0 as ``ltr_common.sequences`` pads, for ids outside the table are refused outside
    ``jit``): item embeddings times sqrt(d)
    plus learned slot embeddings, ``num_blocks`` pre-norm blocks (multi-head self-attention,
    then a GELU feed-forward layer, each added back), a final layer norm. Dropout, in
    training, on the embeddings, the attention weights and each block's two outputs. The state at
    every slot is the user vector after reading the history up to it, which training uses
    to score the items that followed (``encode``). Items are scored by the same embeddings
    the history is read with, so the catalog is one matrix product.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> model = SequenceScorer(num_users=5, num_items=7, embedding_dim=4, history_length=3, num_heads=2)
      >>> history, mask = jnp.array([[0, 2, 5], [0, 0, 1]]), jnp.array([[True] * 3, [False, False, True]])
      >>> params = model.init(jax.random.key(0), history, mask, history[..., None], history)["params"]
      >>> model.apply({"params": params}, history, mask, method=model.catalog_scores).shape
      (2, 7)
    """

    num_users: int
    num_items: int
    embedding_dim: int = 64
    history_length: int = 200
    num_blocks: int = 2
    num_heads: int = 2
    dropout: float = 0.2
    rating_levels: int = 0

    @property
    def LAYOUT(self) -> Layout:  # the name every model class gives its layout
        return identity_layout(self._canonical())

    def _canonical(self):
        return sequence_encoder(
            self.num_users,
            self.num_items,
            embedding_dim=self.embedding_dim,
            history_length=self.history_length,
            num_blocks=self.num_blocks,
            rating_levels=self.rating_levels,
        )

    def setup(self):
        inits = {"xavier_uniform": xavier, "zeros": nn.initializers.zeros, "ones": nn.initializers.ones}
        self.weights = {
            name: self.param(name, inits.get(spec.init) or nn.initializers.normal(spec.std), spec.shape)
            for name, spec in self._canonical().items()
        }
        self.dropout_layer = Dropout(self.dropout)

    def encode(
        self,
        history,
        history_mask,
        ratings=None,
        *,
        train: bool = False,
        newest_only: bool = False,
        segments=None,
        slots=None,
    ):
        """[B, T, d]: the user vector after each slot of the history; with ``newest_only``,
        [B, 1, d], the newest slot's alone (the last block then attends from that slot only).
        ``ratings`` [B, T]: each history item's rating, an integer 1..``rating_levels``
        (read only when ``rating_levels`` > 0; ``ltr_common.sequences.check_ratings``).

        A history narrower than ``history_length`` takes the newest slots' position
        embeddings, so its newest item sits where it would in a full window. Packed rows
        (``ltr_common.sequences.pack_histories``) hold several users: ``segments`` [B, T]
        says whose each slot is (attention stays within a user) and ``slots`` [B, T] which
        slot of the user's own row it is (its position)."""
        w, drop = self.weights, lambda x: self.dropout_layer(x, deterministic=not train)
        _batch, length = history.shape
        first_position = self.history_length - length
        positions = (
            w["position_embedding"][first_position:]
            if slots is None
            else w["position_embedding"][first_position + slots]
        )
        x = (
            w["item_embedding"][check_ids(history, self.num_items, "history")] * math.sqrt(self.embedding_dim)
            + positions
        )
        if self.rating_levels:
            if ratings is None:
                raise ValueError(f"rating_levels={self.rating_levels}: give the history's ratings")
            x = x + w["rating_embedding"][rating_index(ratings, self.rating_levels)]
        x = drop(jnp.where(history_mask[..., None], x, 0.0))
        mask = attention_mask(history_mask, segments)
        for block in range(self.num_blocks):
            queries = slice(-1, None) if newest_only and block == self.num_blocks - 1 else slice(None)
            x = self._block(x, mask[:, :, queries], queries, f"block{block}_", drop)
        return layer_norm(x, w["final_norm_scale"], w["final_norm_bias"])

    def _block(self, x, mask, queries: slice, prefix: str, drop):
        """One pre-norm block; the slots ``queries`` attend (and come out), every slot is a key."""
        d, heads = self.embedding_dim, self.num_heads
        p = lambda name: self.weights[prefix + name]  # noqa: E731
        h = layer_norm(x, p("attention_norm_scale"), p("attention_norm_bias"))

        def project(part, rows):
            return rows @ p(f"{part}_kernel") + p(f"{part}_bias")

        q, k, v = project("query", h[:, queries]), project("key", h), project("value", h)
        width = d // heads
        attended = []
        for head in range(heads):
            part = slice(head * width, (head + 1) * width)
            logits = (q[..., part] @ k[..., part].swapaxes(-1, -2)) / math.sqrt(width)
            weights = drop(jax.nn.softmax(jnp.where(mask[:, 0], logits, -jnp.inf), axis=-1))
            attended.append(weights @ v[..., part])
        attended = jnp.concatenate(attended, axis=-1)
        x = x[:, queries] + drop(attended @ p("output_kernel") + p("output_bias"))
        h = layer_norm(x, p("feedforward_norm_scale"), p("feedforward_norm_bias"))
        h = jax.nn.gelu(h @ p("feedforward_in_kernel") + p("feedforward_in_bias"), approximate=False)
        return x + drop(h @ p("feedforward_out_kernel") + p("feedforward_out_bias"))

    def score_items(self, states, item_ids):
        """``<state, e_i> + b_i``: states [..., d] and item ids [..., L] to scores [..., L]."""
        items = self.weights["item_embedding"][check_ids(item_ids, self.num_items, "item_ids")]
        return jnp.einsum("...d,...ld->...l", states, items) + self.weights["item_bias"][item_ids]

    def score_catalog(self, states):
        """States [..., d] to the scores of every item [..., num_items]."""
        return states @ self.weights["item_embedding"].T + self.weights["item_bias"]

    def __call__(
        self,
        history,
        history_mask,
        targets,
        negatives,
        ratings=None,
        *,
        catalog: bool = False,
        train: bool = False,
        segments=None,
        slots=None,
    ):
        """The scores of each slot's next-item list (``ltr_common.sequences``): targets [B, T, K]
        then negatives [B, N] (maybe none), [B, T, K + N]; with ``catalog``, the whole catalog,
        [B, T, num_items]. ``segments`` and ``slots``: a packed batch's (``encode``)."""
        states = self.encode(history, history_mask, ratings, train=train, segments=segments, slots=slots)
        if catalog:
            return self.score_catalog(states)
        batch, length, _ = targets.shape
        check_ids(targets, self.num_items, "targets")
        check_ids(negatives, self.num_items, "negatives")
        shared = jnp.broadcast_to(negatives[:, None, :], (batch, length, negatives.shape[-1]))
        return self.score_items(states, jnp.concatenate([targets, shared], axis=-1))

    def user_vectors(self, history, history_mask, ratings=None):
        """Histories [U, T] to each user's vector [U, d]: the state at the newest slot."""
        return self.encode(history, history_mask, ratings, newest_only=True)[:, -1]

    def catalog_scores(self, history, history_mask, ratings=None):
        """Histories [U, T] to the scores of every item [U, num_items], from the newest slot."""
        return self.score_catalog(self.user_vectors(history, history_mask, ratings))


MODEL_CLASSES = {"mlp": TwoTowerScorer, "dot": DotProductScorer, "sequence": SequenceScorer}
