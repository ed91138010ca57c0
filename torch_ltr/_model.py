"""The scorers in PyTorch, mirroring ``jax_ltr``'s: the two-tower MLP and the dot-product two tower."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ltr_common.weights import Layout

CATALOG_CHUNK = 64  # users scored at once by the MLP over the catalog


class TwoTowerScorer(nn.Module):
    """s(u, i) = MLP([user_emb(u); item_emb(i)]), one hidden ReLU layer with dropout.

    Example:
      >>> model = TwoTowerScorer(num_users=5, num_items=7, embedding_dim=4, mlp_hidden=8)
      >>> tuple(model(torch.tensor([0, 4]), torch.tensor([[1, 2, 3], [6, 0, 0]])).shape)
      (2, 3)
      >>> tuple(model.catalog_scores(torch.tensor([0, 4])).shape)
      (2, 7)
    """

    # Where each canonical parameter (ltr_common.models.two_tower_mlp) lives in the state dict;
    # Linear weights are [out, in], the canonical kernels [in, out].
    LAYOUT: ClassVar[Layout] = {
        "user_embedding": (("user_embedding.weight",), False),
        "item_embedding": (("item_embedding.weight",), False),
        "hidden_kernel": (("hidden.weight",), True),
        "hidden_bias": (("hidden.bias",), False),
        "output_kernel": (("output.weight",), True),
        "output_bias": (("output.bias",), False),
    }

    def __init__(
        self,
        num_users: int,
        num_items: int,
        embedding_dim: int = 64,
        mlp_hidden: int = 128,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.user_embedding = nn.Embedding(num_users, embedding_dim)
        self.item_embedding = nn.Embedding(num_items, embedding_dim)
        self.hidden = nn.Linear(2 * embedding_dim, mlp_hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(mlp_hidden, 1)
        for module in (self.user_embedding, self.item_embedding, self.hidden, self.output):
            nn.init.xavier_uniform_(module.weight)
        for module in (self.hidden, self.output):
            nn.init.zeros_(module.bias)

    def _halves(self, user_ids, item_ids):
        weight = self.hidden.weight  # [H, 2d]; split so the user half runs once per list
        user_part = self.user_embedding(user_ids) @ weight[:, : self.embedding_dim].T
        item_part = self.item_embedding(item_ids) @ weight[:, self.embedding_dim :].T
        return user_part, item_part

    def forward(self, user_ids: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        """``list_scores``: user ids [B] and item ids [B, L] to scores [B, L]."""
        user_part, item_part = self._halves(user_ids, item_ids)
        hidden = torch.relu(item_part + user_part[:, None, :] + self.hidden.bias)
        return self.output(self.dropout(hidden)).squeeze(-1)

    list_scores = forward

    def catalog_scores(self, user_ids: torch.Tensor) -> torch.Tensor:
        """User ids [U] to scores of every item [U, num_items], ``CATALOG_CHUNK`` users at a time."""
        items = torch.arange(self.item_embedding.num_embeddings, device=user_ids.device)
        user_part, item_part = self._halves(user_ids, items)
        rows = []
        for start in range(0, len(user_ids), CATALOG_CHUNK):
            hidden = torch.relu(
                item_part + user_part[start : start + CATALOG_CHUNK, None, :] + self.hidden.bias
            )
            rows.append(self.output(self.dropout(hidden)).squeeze(-1))
        return torch.cat(rows)


class DotProductScorer(nn.Module):
    """A true two tower: ``s(u, i) = <e_u, e_i> + b_i + b_u`` (see ``jax_ltr.DotProductScorer``).

    Example:
      >>> model = DotProductScorer(num_users=5, num_items=7, embedding_dim=4)
      >>> tuple(model(torch.tensor([0, 4]), torch.tensor([[1, 2, 3], [6, 0, 0]])).shape)
      (2, 3)
    """

    LAYOUT: ClassVar[Layout] = {
        "user_embedding": (("user_embedding.weight",), False),
        "item_embedding": (("item_embedding.weight",), False),
        "user_bias": (("user_bias",), False),
        "item_bias": (("item_bias",), False),
    }

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64):
        super().__init__()
        self.user_embedding = nn.Embedding(num_users, embedding_dim)
        self.item_embedding = nn.Embedding(num_items, embedding_dim)
        self.user_bias = nn.Parameter(torch.zeros(num_users))
        self.item_bias = nn.Parameter(torch.zeros(num_items))

    def forward(self, user_ids: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        """``list_scores``: user ids [B] and item ids [B, L] to scores [B, L]."""
        users, items = self.user_embedding(user_ids), self.item_embedding(item_ids)
        dot = torch.einsum("bd,bld->bl", users, items)
        return dot + self.item_bias[item_ids] + self.user_bias[user_ids][:, None]

    list_scores = forward

    def catalog_scores(self, user_ids: torch.Tensor) -> torch.Tensor:
        """User ids [U] to scores of every item [U, num_items]: one matrix product."""
        users = self.user_embedding(user_ids)
        return users @ self.item_embedding.weight.T + self.item_bias + self.user_bias[user_ids][:, None]


MODEL_CLASSES = {"mlp": TwoTowerScorer, "dot": DotProductScorer}
