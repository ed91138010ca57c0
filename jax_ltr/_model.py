"""The scorers in Flax Linen: the two-tower MLP and the dot-product two tower.

Linen keeps parameters a plain pytree outside the module, which is what a pure, donated
``train_step``, the optax state and the weight converter all want; nothing here needs NNX's
mutable objects. Each model scores lists (``__call__``: user ids [B], item ids [B, L] →
[B, L]) and the whole catalog (``catalog_scores``: user ids [U] → [U, num_items]), and
declares where its canonical parameters (``ltr_common.models``) live (``LAYOUT``).
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from ltr_common.weights import Layout

xavier = nn.initializers.xavier_uniform()
CATALOG_CHUNK = 64  # users scored at once by the MLP over the catalog: [64, I, H] activations


class TwoTowerScorer(nn.Module):
    """Scores items for users with one hidden ReLU layer over the concatenated embeddings.

    The first layer's kernel is split into its user and item halves, so the user half is
    applied once per list rather than once per item: the same function, B*L*d fewer
    multiply-adds.

    Example:
      >>> import jax
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
        self.dropout_layer = nn.Dropout(self.dropout)

    def _halves(self, user_ids, item_ids):
        user_part = self.user_embedding(user_ids) @ self.hidden_kernel[: self.embedding_dim]
        item_part = self.item_embedding(item_ids) @ self.hidden_kernel[self.embedding_dim :]
        return user_part, item_part

    def _score(self, hidden, train: bool):
        hidden = self.dropout_layer(nn.relu(hidden), deterministic=not train)
        return jnp.squeeze(self.output(hidden), -1)

    def __call__(self, user_ids, item_ids, *, train: bool = False):
        """``list_scores``: user ids [B] and item ids [B, L] to scores [B, L]."""
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


class DotProductScorer(nn.Module):
    """A true two tower: ``s(u, i) = <e_u, e_i> + b_i + b_u``.

    The item bias carries an item's overall appeal; the user bias, which no ranking of a
    user's items sees, lets a pointwise term fit a user's rating level. The catalog is one
    matrix product, and the embeddings serve nearest-neighbour search as they are (append
    ``b_i`` to the item vector and a 1 to the user vector).

    Example:
      >>> import jax
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
        """``list_scores``: user ids [B] and item ids [B, L] to scores [B, L]."""
        users, items = self.user_embedding(user_ids), self.item_embedding(item_ids)
        dot = jnp.einsum("bd,bld->bl", users, items)
        return dot + self.item_bias[item_ids] + self.user_bias[user_ids][:, None]

    def catalog_scores(self, user_ids):
        """User ids [U] to scores of every item [U, num_items]: one matrix product."""
        users = self.user_embedding(user_ids)
        return users @ self.item_embedding.embedding.T + self.item_bias + self.user_bias[user_ids][:, None]


MODEL_CLASSES = {"mlp": TwoTowerScorer, "dot": DotProductScorer}
