"""Training in PyTorch, shaped like ``jax_ltr._train``: the reference trainer on the same batches."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from ltr_common.config import TrainConfig
from ltr_common.files import read_checkpoint_bytes, write_checkpoint_bytes
from ltr_common.weights import flax_to_torch, initial_weights
from torch_ltr._batch import as_arrays
from torch_ltr._losses import listmle_loss, pairwise_pl_loss
from torch_ltr._metrics import average_precision, mrr, ndcg_at_k, recall_at_k
from torch_ltr._model import TwoTowerScorer


def make_model(config: TrainConfig, num_users: int, num_items: int) -> TwoTowerScorer:
    return TwoTowerScorer(num_users, num_items, config.embedding_dim, config.mlp_hidden, config.dropout)


def make_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam (AdamW when weight_decay > 0); clipping happens in ``train_step``."""
    if config.weight_decay > 0:
        return torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
    return torch.optim.Adam(model.parameters(), lr=config.learning_rate)


def loss_terms(scores, labels, where, pairs, tie_break, config: TrainConfig):
    """(total, listmle, pairwise) for the configured loss; an unused term is 0."""
    alpha = config.listmle_weight
    zero = scores.new_zeros(())
    listwise = listmle_loss(scores, labels, where=where, tie_break=tie_break) if alpha > 0 else zero
    pairwise = pairwise_pl_loss(scores, labels, where=where, pairs=pairs) if alpha < 1 else zero
    return alpha * listwise + (1.0 - alpha) * pairwise, listwise, pairwise


def train_step(model, optimizer, batch, pairs, tie_break, *, config: TrainConfig) -> dict:
    """One optimiser step; returns detached scalar tensors (no host sync)."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    scores = model(batch.user_ids.long(), batch.item_ids.long())
    total, listwise, pairwise = loss_terms(scores, batch.labels, batch.mask, pairs, tie_break, config)
    total.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
    optimizer.step()
    return {
        "loss_total": total.detach(),
        "loss_listmle": listwise.detach(),
        "loss_pairwise": pairwise.detach(),
        "grad_norm": grad_norm.detach(),
    }


def ranking_metrics(scores, labels, where, top_k) -> dict:
    out = {f"ndcg@{k}": ndcg_at_k(scores, labels, where=where, k=k, reduction="none") for k in top_k}
    out["mrr"] = mrr(scores, labels, where=where, reduction="none")
    out["map"] = average_precision(scores, labels, where=where, reduction="none")
    out["recall@10"] = recall_at_k(scores, labels, where=where, k=10, reduction="none")
    return out


class Trainer:
    """The PyTorch backend of ``ltr_common.loop.train``."""

    def __init__(self, config: TrainConfig, num_users: int, num_items: int):
        self.config = config
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        torch.manual_seed(config.seed)
        self.model = make_model(config, num_users, num_items)
        weights = initial_weights(config.seed, num_users, num_items, config.embedding_dim, config.mlp_hidden)
        shapes = {k: v.shape for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(
            {k: torch.from_numpy(v) for k, v in flax_to_torch(weights, expected_shapes=shapes).items()}
        )
        self.model.to(self.device)
        self.optimizer = make_optimizer(config, self.model)

    def devices(self) -> str:
        return str(self.device)

    def _tensors(self, batch):
        return as_arrays(batch, device=self.device)

    def train_step(self, batch, pairs, tie_break):
        pairs = None if pairs is None else tuple(torch.from_numpy(p).to(self.device) for p in pairs)
        return train_step(
            self.model,
            self.optimizer,
            self._tensors(batch),
            pairs,
            torch.from_numpy(tie_break).to(self.device),
            config=self.config,
        )

    @staticmethod
    def metrics_to_host(metrics: list[dict]) -> list[dict[str, float]]:
        return [{k: float(v) for k, v in m.items()} for m in metrics]

    @torch.no_grad()
    def evaluate_batch(self, batch) -> dict[str, np.ndarray]:
        self.model.eval()
        b = self._tensors(batch)
        scores = self.model(b.user_ids.long(), b.item_ids.long())
        return {
            k: v.cpu().numpy()
            for k, v in ranking_metrics(scores, b.labels, b.mask, self.config.top_k).items()
        }

    def learning_rate(self, step: int) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def save(self, path: Path, progress: dict) -> None:
        buffer = io.BytesIO()
        torch.save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rng": torch.get_rng_state(),
                "progress": progress,
            },
            buffer,
        )
        write_checkpoint_bytes(path, buffer.getvalue())

    def restore(self, path: Path) -> dict:
        payload = torch.load(
            io.BytesIO(read_checkpoint_bytes(path)), map_location=self.device, weights_only=False
        )
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        torch.set_rng_state(payload["rng"])
        return payload["progress"]

    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            self.model.user_embedding.weight.detach().cpu().numpy(),
            self.model.item_embedding.weight.detach().cpu().numpy(),
        )

    @torch.no_grad()
    def set_user_embeddings(self, users: np.ndarray) -> None:
        """Replace the user embedding matrix (same shape), e.g. for an ablation."""
        weight = self.model.user_embedding.weight
        if tuple(users.shape) != tuple(weight.shape):
            raise ValueError(f"users: expected shape {tuple(weight.shape)}, got {users.shape}")
        weight.copy_(torch.as_tensor(users, dtype=weight.dtype))
