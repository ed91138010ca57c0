"""The two-tower scorer in Flax Linen: s(u, i) = MLP([user_emb(u); item_emb(i)]).

Linen keeps parameters a plain pytree outside the module, which is what a pure, donated
``train_step``, the optax state and the weight converter all want; nothing here needs
NNX's mutable objects.
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax.numpy as jnp

from ltr_common.weights import Layout

xavier = nn.initializers.xavier_uniform()


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

    @nn.compact
    def __call__(self, user_ids, item_ids, *, train: bool = False):
        """``list_scores``: user ids [B] and item ids [B, L] to scores [B, L]."""
        users = nn.Embed(self.num_users, self.embedding_dim, embedding_init=xavier, name="user_embedding")(
            user_ids
        )
        items = nn.Embed(self.num_items, self.embedding_dim, embedding_init=xavier, name="item_embedding")(
            item_ids
        )
        kernel = self.param("hidden_kernel", xavier, (2 * self.embedding_dim, self.mlp_hidden))
        bias = self.param("hidden_bias", nn.initializers.zeros, (self.mlp_hidden,))
        user_part = users @ kernel[: self.embedding_dim]  # [B, H]
        hidden = nn.relu(items @ kernel[self.embedding_dim :] + user_part[:, None, :] + bias)
        hidden = nn.Dropout(self.dropout, deterministic=not train)(hidden)
        out = nn.Dense(1, kernel_init=xavier, bias_init=nn.initializers.zeros, name="output")(hidden)
        return jnp.squeeze(out, -1)
