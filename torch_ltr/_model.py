"""The two-tower scorer in PyTorch, mirroring ``jax_ltr.TwoTowerScorer``."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ltr_common.weights import Layout


class TwoTowerScorer(nn.Module):
    """s(u, i) = MLP([user_emb(u); item_emb(i)]), one hidden ReLU layer with dropout.

    Example:
      >>> model = TwoTowerScorer(num_users=5, num_items=7, embedding_dim=4, mlp_hidden=8)
      >>> tuple(model(torch.tensor([0, 4]), torch.tensor([[1, 2, 3], [6, 0, 0]])).shape)
      (2, 3)
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

    def forward(self, user_ids: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        """``list_scores``: user ids [B] and item ids [B, L] to scores [B, L]."""
        users = self.user_embedding(user_ids)
        items = self.item_embedding(item_ids)
        weight = self.hidden.weight  # [H, 2d]; split so the user half runs once per list
        user_part = users @ weight[:, : self.embedding_dim].T
        hidden = torch.relu(
            items @ weight[:, self.embedding_dim :].T + user_part[:, None, :] + self.hidden.bias
        )
        return self.output(self.dropout(hidden)).squeeze(-1)

    list_scores = forward
