"""The training loop, once, for both frameworks: epochs, batches, pairs, evaluation, early
stopping, checkpoints, resume, logging. A framework supplies a ``Backend``.

Everything random on the host — batch order, sampled pairs, the tie order of equal labels —
is a pure function of ``(seed, epoch, batch index)``, and the framework's own RNG state
(dropout) travels in its checkpoint, so a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from loguru import logger

from ltr_common.batching import Batch
from ltr_common.config import SELECTION_METRIC, TrainConfig
from ltr_common.files import restore_with_fallback
from ltr_common.tasks import Task

LOG_EVERY = 10


class NonFiniteError(RuntimeError):
    """A loss or gradient norm that is NaN or infinite."""


@runtime_checkable
class Backend(Protocol):
    """A framework's trainer, as the loop, the run directory and the scripts use it."""

    def devices(self) -> str:
        """The devices it trains on, for the log."""

    def train_step(self, batch: Batch, pairs) -> Any:
        """One optimiser step; returns the step's metrics, still on the device. The arrays
        are the step's own: nothing changes them after the call (a backend may read them
        while the step runs asynchronously)."""

    def metrics_to_host(self, metrics: list) -> list[dict[str, float]]:
        """Steps' metrics as floats: ``loss_total``, ``loss_<term>``, ``grad_norm``."""

    def batch_metrics(self, batch: Batch, history=None) -> dict[str, np.ndarray]:
        """Per-list evaluation metrics of the current model (``ranking_metrics``); a sequence
        model reads each user's ``history``."""

    def catalog_scores(self, users: np.ndarray, history=None) -> np.ndarray:
        """Scores of every item [U, num_items] for ``users`` [U], by the current model; a
        sequence model reads each user's ``history`` (a ``Lists``, one list per user)."""

    def catalog_metrics(
        self, users: np.ndarray, reports: dict, exclude: np.ndarray, history=None
    ) -> dict[str, np.ndarray]:
        """Per-user full-catalog metrics of the current model (``tasks.base.Scorer``)."""

    def learning_rate(self, step: int) -> float: ...

    def save(self, paths: Sequence[Path], progress: dict) -> None:
        """Write one checkpoint (model, optimiser and RNG state, and ``progress``), serialised
        once, to each of ``paths``."""

    def restore(self, path: Path) -> dict:
        """Load a checkpoint; returns its ``progress``."""

    def weights(self) -> dict[str, np.ndarray]:
        """The model's weights by canonical name (``ltr_common.models``), as NumPy."""

    def set_user_embeddings(self, users: np.ndarray) -> None:
        """Replace the user embedding matrix (same shape)."""


@dataclasses.dataclass
class Progress:
    epoch: int = 0
    batch: int = 0  # next batch of ``epoch``
    step: int = 0
    best: float = -math.inf
    best_step: int = -1
    evals_since_best: int = 0
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def train(
    config: TrainConfig,
    task: Task,
    backend: Backend,
    run_dir: Path,
    *,
    writer=None,
    resume: bool = False,
    progress_bar: Callable | None = None,
    after_step: Callable[[Progress], None] | None = None,
    epoch_seconds: list[float] | None = None,
) -> Progress:
    """Train on ``task`` until ``config.epochs`` or early stopping; checkpoints go to ``run_dir``.

    ``epoch_seconds``, when given, gets the wall time of each whole epoch this call runs
    (its steps, host inputs, evaluation and checkpoints; the first includes compilation;
    the rest of an epoch resumed mid-way is not one).

    With ``config.refit`` there are no validation lists: every checkpoint is also the best,
    and the last weights are the ones tested. ``after_step`` is called after every step
    (tests use it to interrupt a run).
    """
    latest, best = run_dir / "checkpoint_latest", run_dir / "checkpoint_best"
    progress = Progress()
    if resume:
        progress = Progress(**restore_with_fallback(backend.restore, latest))
        logger.info(
            "resumed from {} at epoch {}, batch {}, step {}",
            latest,
            progress.epoch,
            progress.batch,
            progress.step,
        )
    steps_per_epoch = task.steps_per_epoch()
    if steps_per_epoch < 1:  # the tasks refuse such a split first (``tasks.base``); never loop on it
        raise ValueError(f"{task.name}: an epoch of {steps_per_epoch} training steps would never end")
    bar = progress_bar(total=config.epochs * steps_per_epoch, initial=progress.step) if progress_bar else None
    pending: list[tuple[int, dict]] = []
    window_start, window_lists = time.perf_counter(), 0

    def flush() -> None:
        nonlocal window_start, window_lists
        if not pending:
            return
        host = backend.metrics_to_host([m for _, m in pending])
        elapsed = time.perf_counter() - window_start
        for (step, _), values in zip(pending, host, strict=True):
            bad = [k for k in ("loss_total", "grad_norm") if not math.isfinite(values[k])]
            if bad:
                raise NonFiniteError(
                    f"step {step}: non-finite {', '.join(f'{k}={values[k]}' for k in bad)}; "
                    f"the last good checkpoint stays at {latest}"
                )
            if writer is not None:
                for key, value in values.items():
                    writer.add_scalar(f"train/{key}", value, step)
                writer.add_scalar("train/learning_rate", backend.learning_rate(step), step)
        if writer is not None and elapsed > 0:
            writer.add_scalar("train/lists_per_second", window_lists / elapsed, pending[-1][0])
        if bar is not None:
            bar.set_postfix(loss=f"{host[-1]['loss_total']:.4f}")
        pending.clear()
        window_start, window_lists = time.perf_counter(), 0

    def evaluate_and_checkpoint() -> None:
        flush()  # every step up to here was finite before anything is saved
        if config.refit:  # nothing to select on: the latest weights are the best
            progress.best_step = progress.step
            backend.save([best, latest], progress.to_dict())
            return
        metrics = task.evaluate(backend, "validation")
        if writer is not None:
            for key, value in metrics.items():
                writer.add_scalar(f"val/{key}", value, progress.step)
        score = metrics[SELECTION_METRIC]
        logger.info(
            "step {} epoch {}: validation {}",
            progress.step,
            progress.epoch,
            ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
        )
        improved = score > progress.best
        if improved:
            progress.best, progress.best_step, progress.evals_since_best = score, progress.step, 0
        else:
            progress.evals_since_best += 1
            if progress.evals_since_best >= config.early_stop_patience:
                progress.stopped_early = True
                logger.info(
                    "early stop: no better validation {} in {} evaluations",
                    SELECTION_METRIC,
                    config.early_stop_patience,
                )
        backend.save([best, latest] if improved else [latest], progress.to_dict())

    while progress.epoch < config.epochs and not progress.stopped_early:
        epoch_start, whole_epoch = time.perf_counter(), progress.batch == 0  # not a resumed part
        inputs = task.epoch_inputs(epoch=progress.epoch, start_batch=progress.batch)
        for batch, pairs in inputs:
            pending.append((progress.step + 1, backend.train_step(batch, pairs)))
            window_lists += int((batch.list_ids >= 0).sum())
            progress.step += 1
            progress.batch += 1
            if bar is not None:
                bar.update()
            if progress.step % LOG_EVERY == 0:
                flush()
            end_of_epoch = progress.batch == steps_per_epoch
            if end_of_epoch:
                progress.epoch, progress.batch = progress.epoch + 1, 0
            if progress.step % config.eval_every == 0 or end_of_epoch:
                evaluate_and_checkpoint()
            if end_of_epoch and epoch_seconds is not None and whole_epoch:
                epoch_seconds.append(time.perf_counter() - epoch_start)
            if after_step is not None:
                after_step(progress)
            if progress.stopped_early:
                break
    flush()
    if bar is not None:
        bar.close()
    return progress
