"""The scorers in PyTorch, mirroring ``jax_ltr``'s: the two-tower MLP, the dot-product two tower
and the sequence encoder."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from ltr_common.models import initial_weights, sequence_encoder
from ltr_common.weights import Layout, identity_layout

CATALOG_CHUNK = 64  # users scored at once by the MLP over the catalog


class TwoTowerScorer(nn.Module):
    """s(u, i) = MLP([user_emb(u); item_emb(i)]), one hidden ReLU layer with dropout.

    Example:
      >>> import torch
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
      >>> import torch
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


def layer_norm(x, scale, bias, *, eps: float = 1e-6):
    """``jax_ltr``'s ``layer_norm``: two passes over the last axis."""
    centred = x - x.mean(-1, keepdim=True)
    variance = (centred * centred).mean(-1, keepdim=True)
    return centred * torch.rsqrt(variance + eps) * scale + bias


def rating_index(ratings: torch.Tensor, levels: int) -> torch.Tensor:
    """Ratings 1..``levels`` as rows of the rating embedding (see ``jax_ltr``)."""
    return ratings.long().clamp(1, levels) - 1


def attention_mask(valid):
    """[B, 1, T, T] bool: ``k <= q`` and ``k`` real, or ``k == q`` (see ``jax_ltr``)."""
    length = valid.shape[-1]
    eye = torch.eye(length, dtype=torch.bool, device=valid.device)
    causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=valid.device))
    return ((causal & valid[:, None, :]) | eye)[:, None]


class SequenceScorer(nn.Module):
    """The user vector from the user's history (see ``jax_ltr.SequenceScorer``): every
    canonical parameter under its own name, matrices ``[in, out]`` as in Flax.

    Example:
      >>> import torch
      >>> model = SequenceScorer(num_users=5, num_items=7, embedding_dim=4, history_length=3, num_heads=2)
      >>> history = torch.tensor([[0, 2, 5], [0, 0, 1]])
      >>> mask = torch.tensor([[True] * 3, [False, False, True]])
      >>> tuple(model.catalog_scores(history, mask).shape)
      (2, 7)
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        embedding_dim: int = 64,
        history_length: int = 200,
        num_blocks: int = 2,
        num_heads: int = 2,
        dropout: float = 0.2,
        rating_levels: int = 0,
    ):
        super().__init__()
        self.embedding_dim, self.num_blocks, self.num_heads = embedding_dim, num_blocks, num_heads
        self.rating_levels = rating_levels
        canonical = sequence_encoder(
            num_users,
            num_items,
            embedding_dim=embedding_dim,
            history_length=history_length,
            num_blocks=num_blocks,
            rating_levels=rating_levels,
        )
        self.LAYOUT: Layout = identity_layout(canonical)
        for name, value in initial_weights(canonical, seed=0).items():  # the trainer sets its own
            self.register_parameter(name, nn.Parameter(torch.from_numpy(value)))
        self.dropout = nn.Dropout(dropout)

    def encode(self, history, history_mask, ratings=None, *, newest_only: bool = False):
        """[B, T, d] states, or [B, 1, d] with ``newest_only`` (see ``jax_ltr.SequenceScorer.encode``)."""
        length = history.shape[-1]
        x = self.item_embedding[history] * math.sqrt(self.embedding_dim) + self.position_embedding[-length:]
        if self.rating_levels:
            if ratings is None:
                raise ValueError(f"rating_levels={self.rating_levels}: give the history's ratings")
            x = x + self.rating_embedding[rating_index(ratings, self.rating_levels)]
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        x = self.dropout(torch.where(history_mask[..., None], x, zero))
        mask = attention_mask(history_mask)
        for block in range(self.num_blocks):
            queries = slice(-1, None) if newest_only and block == self.num_blocks - 1 else slice(None)
            x = self._block(x, mask[:, :, queries], queries, f"block{block}_")
        return layer_norm(x, self.final_norm_scale, self.final_norm_bias)

    def _block(self, x, mask, queries: slice, prefix: str):
        """One pre-norm block (see ``jax_ltr.SequenceScorer._block``)."""
        d, heads = self.embedding_dim, self.num_heads
        p = lambda name: getattr(self, prefix + name)  # noqa: E731
        h = layer_norm(x, p("attention_norm_scale"), p("attention_norm_bias"))

        def project(part, rows):
            out = rows @ p(f"{part}_kernel") + p(f"{part}_bias")
            return out.reshape(*rows.shape[:2], heads, d // heads)

        q, k, v = project("query", h[:, queries]), project("key", h), project("value", h)
        logits = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(d // heads)
        weights = self.dropout(torch.softmax(logits.masked_fill(~mask, -math.inf), dim=-1))
        attended = torch.einsum("bhqk,bkhe->bqhe", weights, v).reshape(*q.shape[:2], d)
        x = x[:, queries] + self.dropout(attended @ p("output_kernel") + p("output_bias"))
        h = layer_norm(x, p("feedforward_norm_scale"), p("feedforward_norm_bias"))
        h = torch.nn.functional.gelu(h @ p("feedforward_in_kernel") + p("feedforward_in_bias"))
        return x + self.dropout(h @ p("feedforward_out_kernel") + p("feedforward_out_bias"))

    def score_items(self, states: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        """``<state, e_i> + b_i``: states [..., d] and item ids [..., L] to scores [..., L]."""
        items = self.item_embedding[item_ids]
        return torch.einsum("...d,...ld->...l", states, items) + self.item_bias[item_ids]

    def score_catalog(self, states: torch.Tensor) -> torch.Tensor:
        """States [..., d] to the scores of every item [..., num_items]."""
        return states @ self.item_embedding.T + self.item_bias

    def forward(self, history, history_mask, targets, negatives, ratings=None, *, catalog: bool = False):
        """The scores of each slot's next-item list (see ``jax_ltr.SequenceScorer``)."""
        states = self.encode(history, history_mask, ratings)
        if catalog:
            return self.score_catalog(states)
        batch, length, _ = targets.shape
        shared = negatives[:, None, :].expand(batch, length, negatives.shape[-1])
        return self.score_items(states, torch.cat([targets, shared], dim=-1))

    def user_vectors(self, history, history_mask, ratings=None) -> torch.Tensor:
        """Histories [U, T] to each user's vector [U, d]: the state at the newest slot."""
        return self.encode(history, history_mask, ratings, newest_only=True)[:, -1]

    def catalog_scores(self, history, history_mask, ratings=None) -> torch.Tensor:
        """Histories [U, T] to the scores of every item [U, num_items], from the newest slot."""
        return self.score_catalog(self.user_vectors(history, history_mask, ratings))


MODEL_CLASSES = {"mlp": TwoTowerScorer, "dot": DotProductScorer, "sequence": SequenceScorer}
