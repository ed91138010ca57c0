"""Training in PyTorch, shaped like ``jax_ltr._train``: the reference trainer on the same batches,
and a ``Trainer``: the ``ltr_common.loop.Backend`` for PyTorch."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import numpy as np
import torch

from ltr_common.config import TrainConfig
from ltr_common.evaluation import catalog_reports, list_reports
from ltr_common.files import CheckpointError, CheckpointWriter, read_checkpoint_bytes, undecodable
from ltr_common.losses import training_objective
from ltr_common.models import SEQUENTIAL, initial_weights, model_options, model_parameters, weight_decay
from ltr_common.sequences import SequenceBatch, user_histories, width_groups
from ltr_common.weights import from_canonical, to_canonical
from torch_ltr import _losses
from torch_ltr._batch import as_arrays
from torch_ltr._metrics import ranking_metrics, retrieval_metrics
from torch_ltr._model import MODEL_CLASSES
from torch_ltr._sequence import next_item_lists


def make_model(config: TrainConfig, num_users: int, num_items: int):
    """The ``config.model`` scorer (``MODEL_CLASSES``) with its dimensions from ``config``."""
    return MODEL_CLASSES[config.model](num_users, num_items, **model_options(config))


def make_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam, with decoupled weight decay where it is positive (``ltr_common.models.weight_decay``:
    one rate for matrices, one for biases): AdamW with a parameter group per rate. Clipping
    happens in ``train_step``."""
    if config.weight_decay == config.bias_weight_decay == 0:
        return torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    rates: dict[float, list] = {}
    for parameter in model.parameters():
        rates.setdefault(weight_decay(config, tuple(parameter.shape)), []).append(parameter)
    groups = [{"params": params, "weight_decay": rate} for rate, params in rates.items()]
    return torch.optim.AdamW(groups, lr=config.learning_rate)


def list_scores(model, batch):
    """``(scores, labels, where)`` of a batch's lists (see ``jax_ltr._train.list_scores``)."""
    if isinstance(batch, SequenceBatch):
        inputs = (
            batch.history.long(),
            batch.history_mask,
            batch.targets.long(),
            batch.negatives.long(),
            batch.history_labels,
        )
        scores = model(*inputs, catalog=batch.rated_before.shape[-1] > 0)
        return (scores, *next_item_lists(batch, scores.shape[-1]))
    return model(batch.user_ids.long(), batch.item_ids.long()), batch.labels, batch.mask


def train_step(model, optimizer, batch, pairs, *, config: TrainConfig) -> dict:
    """One optimiser step; returns detached scalar tensors (no host sync): ``loss_total``,
    ``loss_<term>`` for each term of the objective, ``grad_norm``."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    scores, labels, where = list_scores(model, batch)
    total, terms = training_objective(_losses, scores, labels, where, pairs, config.objective_terms, config)
    weight = batch.weight.mean() if isinstance(batch, SequenceBatch) else 1.0
    (weight * total).backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
    optimizer.step()
    metrics = {"loss_total": total.detach(), **{f"loss_{name}": v.detach() for name, v in terms.items()}}
    metrics["grad_norm"] = grad_norm.detach()
    return metrics


class Trainer:
    """The PyTorch ``ltr_common.loop.Backend``."""

    def __init__(self, config: TrainConfig, num_users: int, num_items: int):
        self.config, self.num_users = config, num_users
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        torch.manual_seed(config.seed)
        self.model = make_model(config, num_users, num_items)
        self._parameters = model_parameters(config, num_users, num_items)
        weights = initial_weights(self._parameters, config.seed)
        state = from_canonical(weights, self.model.LAYOUT, parameters=self._parameters, target="torch")
        self.model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        self.model.to(self.device)
        self.optimizer = make_optimizer(config, self.model)
        self._checkpoints = CheckpointWriter()

    def devices(self) -> str:
        return str(self.device)

    def _tensors(self, batch):
        return as_arrays(batch, device=self.device)

    def train_step(self, batch, pairs):
        pairs = None if pairs is None else tuple(torch.from_numpy(p).to(self.device) for p in pairs)
        return train_step(self.model, self.optimizer, self._tensors(batch), pairs, config=self.config)

    @staticmethod
    def metrics_to_host(metrics: list[dict]) -> list[dict[str, float]]:
        return [{k: float(v) for k, v in m.items()} for m in metrics]

    @torch.no_grad()
    def batch_metrics(self, batch, history=None) -> dict[str, np.ndarray]:
        self.model.eval()
        b = self._tensors(batch)
        if self.config.model in SEQUENTIAL:  # the users' vectors from ``history``, at full width
            if history is None:
                raise ValueError("a sequence model scores users from their history: give history")
            window = user_histories(history, self.num_users, self.config.history_length).rows(batch.user_ids)
            vectors = self.model.user_vectors(*self._window_tensors(window))
            scores = self.model.score_items(vectors, b.item_ids.long())
        else:
            scores = self.model(b.user_ids.long(), b.item_ids.long())
        metrics = list_reports(
            ranking_metrics,
            scores,
            b,
            top_k=self.config.top_k,
            relevance_threshold=self.config.relevance_threshold,
        )
        return {k: v.cpu().numpy() for k, v in metrics.items()}

    def _by_width(self, method, users, history) -> torch.Tensor:
        """A sequence model's ``method`` rows for ``users`` from ``history``, each width group
        (``ltr_common.sequences.width_groups``) in one call, as in ``jax_ltr``'s trainer."""
        if history is None:
            raise ValueError("a sequence model scores users from their history: give history")
        window = user_histories(history, self.num_users, self.config.history_length).rows(users)
        parts, order = [], []
        for rows, width in width_groups(window):
            parts.append(method(*self._window_tensors(window.rows(rows, width))))
            order.append(rows)
        out = torch.empty((len(users), parts[0].shape[-1]), device=self.device)
        out[torch.as_tensor(np.concatenate(order), device=self.device)] = torch.cat(parts)
        return out

    def _window_tensors(self, window) -> tuple[torch.Tensor, ...]:
        """A ``Histories``' items, mask and ratings as the model reads them, on the device."""
        items = torch.as_tensor(window.items.astype(np.int64), device=self.device)
        return items, *(torch.as_tensor(a, device=self.device) for a in (window.mask, window.labels))

    def _catalog(self, users, history) -> torch.Tensor:
        users = np.asarray(users, np.int64)
        if self.config.model in SEQUENTIAL:
            return self._by_width(self.model.catalog_scores, users, history)
        return self.model.catalog_scores(torch.as_tensor(users, device=self.device))

    @torch.no_grad()
    def user_vectors(self, users, history) -> np.ndarray:
        """A sequence model's user vectors [U, d], read from ``history``."""
        self.model.eval()
        return self._by_width(self.model.user_vectors, np.asarray(users, np.int64), history).cpu().numpy()

    @torch.no_grad()
    def catalog_scores(self, users, history=None) -> np.ndarray:
        self.model.eval()
        return self._catalog(users, history).cpu().numpy()

    @torch.no_grad()
    def catalog_metrics(self, users, reports, exclude, history=None) -> dict[str, np.ndarray]:
        self.model.eval()
        device = self.device
        scores = self._catalog(users, history)
        exclude = torch.as_tensor(exclude, device=device)
        reports = {prefix: torch.as_tensor(relevant, device=device) for prefix, relevant in reports.items()}
        out = catalog_reports(
            retrieval_metrics, scores, reports, exclude=exclude, ks=tuple(self.config.top_k)
        )
        return {name: value.cpu().numpy() for name, value in out.items()}

    def learning_rate(self, step: int) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def save(self, paths, progress: dict, *, background: bool = False) -> None:
        self._checkpoints.write(paths, self._snapshot(progress), background=background)

    def finish_saves(self) -> None:
        self._checkpoints.wait()

    def _snapshot(self, progress: dict):
        """The state now, copied to host memory (the next step changes the tensors in place;
        a copy on the device would hold a second model and optimiser there), and the function
        that serialises it."""
        state = _host_copy(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rng": torch.get_rng_state(),
                "progress": dict(progress),
            }
        )

        def payload() -> bytes:
            buffer = io.BytesIO()
            torch.save(state, buffer)
            return buffer.getvalue()

        return payload

    def restore(self, path: Path) -> dict:
        self._checkpoints.wait()
        payload = read_checkpoint_bytes(path)
        try:  # torch.load fails in many ways on bytes it did not write: each is the file's fault
            saved = torch.load(io.BytesIO(payload), map_location=self.device, weights_only=False)
            model, optimizer, rng = saved["model"], saved["optimizer"], saved["rng"]
            progress = dict(saved["progress"])
        except Exception as err:
            raise undecodable(path, payload, "PyTorch", err) from None
        try:
            self.model.load_state_dict(model)
            self.optimizer.load_state_dict(optimizer)
            torch.set_rng_state(rng)
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(f"{path}: does not hold this model's training state ({err})") from None
        return progress

    def _canonical(self) -> dict[str, np.ndarray]:
        state = {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}
        return to_canonical(state, self.model.LAYOUT, parameters=self._parameters, source="torch")

    def weights(self) -> dict[str, np.ndarray]:
        return self._canonical()

    @torch.no_grad()
    def set_user_embeddings(self, users: np.ndarray) -> None:
        """Replace the user embedding matrix (same shape), e.g. for an ablation."""
        weights = self._canonical()
        if users.shape != weights["user_embedding"].shape:
            raise ValueError(f"users: expected shape {weights['user_embedding'].shape}, got {users.shape}")
        weights["user_embedding"] = users
        state = from_canonical(weights, self.model.LAYOUT, parameters=self._parameters, target="torch")
        self.model.load_state_dict({k: torch.as_tensor(v, dtype=torch.float32) for k, v in state.items()})


def _host_copy(state):
    """``state`` (nested dicts, lists and tuples; a state dict's ``_metadata`` kept) with every
    tensor copied to the CPU and everything else deep-copied."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        copied = copy.copy(state)
        for key, value in state.items():
            copied[key] = _host_copy(value)
        return copied
    if isinstance(state, (list, tuple)):
        return type(state)(_host_copy(value) for value in state)
    return copy.deepcopy(state)
