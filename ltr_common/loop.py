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
from ltr_common.evaluation import NonFiniteError, console_metrics, metric_order
from ltr_common.files import has_checkpoint, restore_with_fallback
from ltr_common.tasks import Task

# Every LOG_EVERY steps the steps before the newest LOG_EVERY are checked and logged; all of
# them before each evaluation and checkpoint.
LOG_EVERY = 10


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
        """Per-list evaluation metrics of the current model (``ltr_common.evaluation.list_reports``:
        ``ranking_metrics`` and ``UNSCORED``, the lists it scored NaN or infinite); a sequence
        model reads each user's ``history``."""

    def catalog_scores(self, users: np.ndarray, history=None) -> np.ndarray:
        """Scores of every item [U, num_items] for ``users`` [U], by the current model; a
        sequence model reads each user's ``history`` (a ``Lists``, one list per user)."""

    def catalog_metrics(
        self, users: np.ndarray, reports: dict, exclude: np.ndarray, history=None
    ) -> dict[str, np.ndarray]:
        """Per-user full-catalog metrics of the current model (``tasks.base.Scorer``)."""

    def learning_rate(self, step: int) -> float: ...

    def save(self, paths: Sequence[Path], progress: dict, *, background: bool = False) -> None:
        """Write one checkpoint (model, optimiser and RNG state, and ``progress``), serialised
        once, to each of ``paths``. With ``background`` the state is taken now and written
        on a thread of its own (``ltr_common.files.CheckpointWriter``): the next ``save``,
        ``restore`` or ``finish_saves`` waits for it."""

    def finish_saves(self) -> None:
        """Until every checkpoint saved is on disk; raises a background write's error."""

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

    @property
    def last_epoch(self) -> int:
        """The epoch (counted from 1) of the last step; 0 before the first."""
        return self.epoch + (self.batch > 0)


class ProgressBar(Protocol):
    """What the loop asks of a progress bar that counts steps (``tqdm`` is one)."""

    total: float

    def update(self, n: float = 1) -> Any: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...

    def refresh(self) -> None: ...

    def close(self) -> None: ...


class _NoBar:
    """The progress bar of a run without one."""

    total = 0

    def update(self, n: float = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


class _NoWriter:
    """The summary writer of a run without one."""

    def add_step_scalars(self, step: int, values: dict[str, float]) -> None:
        pass


def train(
    config: TrainConfig,
    task: Task,
    backend: Backend,
    run_dir: Path,
    *,
    writer=None,
    resume: bool = False,
    progress_bar: Callable[..., ProgressBar] | None = None,
    after_step: Callable[[Progress], None] | None = None,
    epoch_seconds: list[float] | None = None,
    restored: Progress | None = None,
) -> Progress:
    """Train on ``task`` until ``config.epochs`` or early stopping; checkpoints go to ``run_dir``.
    ``resume``: from ``run_dir``'s latest checkpoint, or from ``restored``, what
    ``restore_progress`` returned for it already.

    ``writer`` takes the scalars, each step's at once: ``writer.add_step_scalars(step, {tag:
    value})`` (``ltr_train.EventWriter`` writes TensorBoard events; None: nowhere).
    ``progress_bar(total=, initial=)`` makes a bar that counts steps; it is closed however the
    loop ends (an early stop sets its total to the steps run). ``epoch_seconds``, when given,
    gets the wall time of each whole epoch this call runs (its steps, host inputs, evaluation
    and the hand-over of its checkpoints, whose writes overlap the next steps; the first
    includes compilation; the rest of an epoch resumed mid-way is not one).

    With ``config.refit`` there are no validation lists: every checkpoint is also the best,
    and the last weights are the ones tested. ``after_step`` is called after every step
    (tests use it to interrupt a run).
    """
    if restored is None:
        restored = restore_progress(backend, run_dir) if resume else Progress()
    progress = restored
    steps_per_epoch = task.steps_per_epoch()
    if steps_per_epoch < 1:  # the tasks refuse such a split first (``tasks.base``); never loop on it
        raise ValueError(f"{task.name}: an epoch of {steps_per_epoch} training steps would never end")
    bar = (
        _NoBar()
        if progress_bar is None
        else progress_bar(
            # a run resumed after its early stop has nothing left: its bar is full
            total=progress.step if progress.stopped_early else config.epochs * steps_per_epoch,
            initial=progress.step,
        )
    )
    try:
        loop = _Loop(config, task, backend, run_dir, progress, bar, _NoWriter() if writer is None else writer)
        while progress.epoch < config.epochs and not progress.stopped_early:
            loop.run_epoch(after_step, epoch_seconds)
        loop.flush()
    except BaseException as error:
        bar.close()
        try:  # the checkpoints on disk, without hiding the error that ended the run
            backend.finish_saves()
        except Exception as write_error:
            logger.error("a checkpoint write failed as well: {}: {}", type(write_error).__name__, write_error)
        if isinstance(error, NonFiniteError) and error.args[0] == error.what:  # what the folder keeps
            latest = run_dir / "checkpoint_latest"
            kept = (
                f"the last good checkpoint stays at {latest}"
                if has_checkpoint(latest)
                else f"no checkpoint was written, so there is nothing to resume: remove {run_dir} or train "
                "in another folder"
            )
            raise NonFiniteError(error.what, kept) from None
        raise
    bar.close()
    backend.finish_saves()  # the checkpoints on disk before anything reads them
    return progress


def restore_progress(backend: Backend, run_dir: Path) -> Progress:
    """The progress of the run's latest checkpoint (or the one before it), restored into ``backend``."""
    latest = run_dir / "checkpoint_latest"
    progress = Progress(**restore_with_fallback(backend.restore, latest))
    logger.info(
        "resumed from {} at epoch {}, batch {}, step {}",
        latest,
        progress.epoch,
        progress.batch,
        progress.step,
    )
    return progress


class _StepMetrics:
    """The training steps' metrics, left on the device until ``flush`` brings them to the
    host (no host sync inside a step), checks them and logs them."""

    def __init__(self, backend: Backend, writer) -> None:
        self.backend, self.writer = backend, writer
        self.pending: list[tuple[int, Any]] = []
        self.window_start, self.window_lists = time.perf_counter(), 0  # lists since the last check

    def add(self, step: int, metrics, lists: int) -> None:
        self.pending.append((step, metrics))
        self.window_lists += lists

    def flush(self, *, keep: int = 0) -> float | None:
        """Check and log the pending steps but the newest ``keep`` (an asynchronous device
        may still be running those: reading them would leave it idle until the next step is
        handed over); returns the last checked one's total loss (None: none checked).

        Raises ``NonFiniteError`` at the first step whose loss or gradient norm is not finite.
        """
        if len(self.pending) <= keep:
            return None
        cut = len(self.pending) - keep
        done, self.pending = self.pending[:cut], self.pending[cut:]
        host = self.backend.metrics_to_host([m for _, m in done])
        elapsed = time.perf_counter() - self.window_start
        for (step, _), values in zip(done, host, strict=True):
            bad = [k for k in ("loss_total", "grad_norm") if not math.isfinite(values[k])]
            if bad:
                raise NonFiniteError(f"step {step}: non-finite {', '.join(f'{k}={values[k]}' for k in bad)}")
            scalars = {f"train/{key}": value for key, value in values.items()}
            scalars["train/learning_rate"] = self.backend.learning_rate(step)
            if step == done[-1][0] and elapsed > 0:  # the lists handed over since the last check
                scalars["train/lists_per_second"] = self.window_lists / elapsed
            self.writer.add_step_scalars(step, scalars)
        self.window_start, self.window_lists = time.perf_counter(), 0
        return host[-1]["loss_total"]


class _Loop:
    """One call of ``train``: its steps, evaluations, checkpoints and progress bar."""

    def __init__(self, config, task, backend, run_dir: Path, progress: Progress, bar, writer) -> None:
        self.config, self.task, self.backend, self.progress = config, task, backend, progress
        self.bar, self.writer = bar, writer
        self.latest, self.best = run_dir / "checkpoint_latest", run_dir / "checkpoint_best"
        self.steps_per_epoch = task.steps_per_epoch()
        self.step_metrics = _StepMetrics(backend, writer)

    def run_epoch(self, after_step, epoch_seconds: list[float] | None) -> None:
        """Train from ``progress`` to the end of its epoch, or to an early stop."""
        progress = self.progress
        start, whole_epoch = time.perf_counter(), progress.batch == 0  # not a resumed part
        for batch, pairs in self.task.epoch_inputs(epoch=progress.epoch, start_batch=progress.batch):
            self.train_step(batch, pairs)
            end_of_epoch = progress.batch == self.steps_per_epoch
            if end_of_epoch:
                progress.epoch, progress.batch = progress.epoch + 1, 0
            if progress.step % self.config.eval_every == 0 or end_of_epoch:
                self.evaluate_and_checkpoint()
            if end_of_epoch and epoch_seconds is not None and whole_epoch:
                epoch_seconds.append(time.perf_counter() - start)
            if after_step is not None:
                after_step(progress)
            if progress.stopped_early:
                return

    def train_step(self, batch: Batch, pairs) -> None:
        progress = self.progress
        metrics = self.backend.train_step(batch, pairs)
        self.step_metrics.add(progress.step + 1, metrics, int((batch.list_ids >= 0).sum()))
        progress.step += 1
        progress.batch += 1
        self.bar.update()
        if progress.step % LOG_EVERY == 0:  # the steps before the last LOG_EVERY: done by now
            self.flush(keep=LOG_EVERY)

    def flush(self, *, keep: int = 0) -> None:
        """Check and log the steps' metrics so far but the newest ``keep``, and show the last
        loss on the bar."""
        loss = self.step_metrics.flush(keep=keep)
        if loss is not None:
            self.show(f"epoch {self.progress.last_epoch}/{self.config.epochs}, loss {loss:.4f}")

    def show(self, status: str) -> None:
        self.bar.set_postfix_str(status)

    def evaluate_and_checkpoint(self) -> None:
        """Save the latest checkpoint, and the best one when validation improved (or, with
        nothing to select on in a refit, always)."""
        self.flush()  # every step up to here was finite before anything is saved
        progress = self.progress
        if self.config.refit:  # nothing to select on: the latest weights are the best
            progress.best_step = progress.step
            self.backend.save([self.best, self.latest], progress.to_dict(), background=True)
            return
        try:
            metrics = self.task.evaluate(self.backend, "validation")
        except NonFiniteError as error:  # the step's update made the model diverge
            raise NonFiniteError(f"step {progress.step}: validation: {error.what}") from None
        self.log_validation(metrics)
        improved = self.select(metrics[SELECTION_METRIC])
        paths = [self.best, self.latest] if improved else [self.latest]
        self.backend.save(paths, progress.to_dict(), background=True)

    def log_validation(self, metrics: dict[str, float]) -> None:
        """Every metric to TensorBoard and the run's log; the console's few (``console_metrics``)."""
        step, epoch = self.progress.step, self.progress.last_epoch
        self.writer.add_step_scalars(step, {f"val/{key}": value for key, value in metrics.items()})
        shown = " ".join(f"{k}={metrics[k]:.4f}" for k in console_metrics(metrics))
        logger.info("step {} epoch {} val {}", step, epoch, shown)
        every = ", ".join(f"{k} {metrics[k]:.4f}" for k in sorted(metrics, key=metric_order))
        logger.debug("step {} epoch {}: validation {}", step, epoch, every)

    def select(self, score: float) -> bool:
        """Whether ``score`` (the selection metric) is the best so far; stops the run after
        ``early_stop_patience`` evaluations without one."""
        progress = self.progress
        if score > progress.best:
            progress.best, progress.best_step, progress.evals_since_best = score, progress.step, 0
            return True
        progress.evals_since_best += 1
        if progress.evals_since_best >= self.config.early_stop_patience:
            progress.stopped_early = True
            logger.info(
                "early stop: no better validation {} in {} evaluations",
                SELECTION_METRIC,
                self.config.early_stop_patience,
            )
            self.bar.total = progress.step  # the bar ends full, where the run ends
            self.show(f"stopped early in epoch {progress.last_epoch}/{self.config.epochs}")
            self.bar.refresh()
        return False
