"""A whole training run in a run directory, for either framework.

``<run_dir>/`` (``ltr_train.runs``): ``config.json`` (resolved), ``data.json``, ``train.log``
(loguru), ``events.*`` (tensorboardX), ``checkpoint_latest``/``checkpoint_best`` (+ ``.prev``),
``metrics.json`` (validation and test at the best checkpoint).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from loguru import logger

from ltr_common.config import SELECTION_METRIC, ConfigError, TrainConfig
from ltr_common.data import fingerprint, load_split
from ltr_common.files import has_checkpoint, restore_with_fallback, write_json
from ltr_common.lists import Split
from ltr_common.loop import Backend, restore_progress, train
from ltr_common.movielens import Ratings
from ltr_common.tasks import Task, make_task
from ltr_train.backends import device_count, framework_package, make_backend
from ltr_train.cli import ensure_folder
from ltr_train.compare import compare, evaluation_columns, fit_baselines
from ltr_train.console import progress_bar as console_bar
from ltr_train.runs import (
    DATA_RECORD,
    check_new_run_dir,
    check_run_data,
    load_run_config,
    moved_data,
    run_config_data,
)


class EventWriter:
    """A run's TensorBoard scalars (``events.*``), written by tensorboardX's ``FileWriter``.

    ``add_step_scalars`` writes a step's scalars as one event: one protobuf and one queued
    record, about 55 µs for a training step's six on a 2-core CPU, where ``add_scalar`` for
    each costs about 300 µs.

    tensorboardX imports torch when it is installed, only so that it can accept torch tensors
    as values; that costs a JAX run about 2 s of start-up on a 2-core CPU. The values here are
    floats, so unless torch is loaded already, its import is made to fail
    (``sys.modules[name] = None``) for the moment tensorboardX is imported.
    """

    def __init__(self, logdir: Path | str) -> None:
        if "tensorboardX" in sys.modules or "torch" in sys.modules:
            import tensorboardX
        else:
            sys.modules["torch"] = None
            try:
                import tensorboardX
            finally:
                del sys.modules["torch"]
        from tensorboardX.proto.summary_pb2 import Summary

        self._summary, self._scalar = Summary, tensorboardX.summary.scalar
        self._file = tensorboardX.FileWriter(str(logdir))
        self._tags: dict[str, str] = {}

    def add_step_scalars(self, step: int, values: dict[str, float]) -> None:
        """``{tag: value}`` at ``step``, in one event. Each tag is stored under the name
        tensorboardX's ``add_scalar`` gives it (``val/ndcg@10`` as ``val/ndcg_10``)."""
        value = self._summary.Value
        scalars = [value(tag=self._tag(tag), simple_value=float(v)) for tag, v in values.items()]
        self._file.add_summary(self._summary(value=scalars), step)

    def _tag(self, tag: str) -> str:
        if tag not in self._tags:  # tensorboardX's own cleaning, once a tag
            self._tags[tag] = self._scalar(tag, 0.0).value[0].tag
        return self._tags[tag]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Beside the model in every run's table: for retrieval the strongest peers that need nothing
# beyond NumPy (EASE, item-kNN; ALS and BPR are in scripts/baselines.py), for reranking the
# item mean.
RUN_BASELINES = {"retrieve": ("popularity", "ease", "item_knn"), "rerank": ("popularity", "item_mean")}
# EASE and item-kNN hold [items, items] float64 matrices (and EASE inverts one): beyond this
# catalog (2 GiB each) a run leaves them out and says so; scripts/baselines.py still fits them.
ITEM_ITEM_PEERS, ITEM_ITEM_LIMIT = ("ease", "item_knn"), 16_384


def run_baselines(task: str, num_items: int) -> tuple[str, ...]:
    """The baselines a run of ``task`` fits beside its model, for a catalog of ``num_items``."""
    names = RUN_BASELINES[task]
    if num_items <= ITEM_ITEM_LIMIT:
        return names
    left = [n for n in names if n in ITEM_ITEM_PEERS]
    if left:
        logger.info(
            "{} items: {} left out of the run's table (above {} items)", num_items, left, ITEM_ITEM_LIMIT
        )
    return tuple(n for n in names if n not in ITEM_ITEM_PEERS)


def fit_batch_size(framework: str, config: TrainConfig, split: Split) -> tuple[TrainConfig, Task]:
    """``(config, task)`` as a run of ``framework`` trains them on ``split``.

    A ``--batch_size`` of at least the lists of an epoch becomes that many lists, rounded up to
    a multiple of the devices a batch is split over: an epoch is one batch of every list
    either way, without the padding rows past them that every step and every evaluation call
    would compute (a batch size of 10**6 on 300 lists took GBs). The random draws of a step
    (pairs, tie orders, dropout, negatives) follow the batch's shape: such a run trains as one
    asked for the fitted size. Other configs come back as given. ``config.json`` keeps the size
    asked for, fitted again wherever the run is resumed or analysed, to the devices there.
    """
    task = make_task(config, split)
    lists = task.training_lists()
    devices = device_count(framework, config)
    rows = -(-lists // devices) * devices
    if config.batch_size < lists or config.batch_size == rows:
        return config, task
    config = dataclasses.replace(config, batch_size=rows)
    return config, make_task(config, split)


def run(
    framework: str,
    config: TrainConfig,
    run_dir: Path,
    *,
    data: tuple[Ratings, Split] | None = None,
    resume: bool = False,
    progress_bar=True,
    after_step=None,
) -> dict:
    """Train, then evaluate the best checkpoint; returns ``metrics.json``'s data.

    Validation and test metrics (for a refit, test only), how many lists each counts, and
    ``RUN_BASELINES`` on the same lists with the model's paired per-list differences.
    ``data``: the ratings and their split (default: MovieLens 100K as ``config`` says,
    through ``load_split``); tests pass small synthetic data here.

    A new run refuses a ``run_dir`` that holds a run (``check_new_run_dir``). The data, the
    task and the trainer are made before anything is written, so that an option they refuse
    (``ConfigError``) leaves the folder as it was. ``train.log`` gets every message, details
    included (loguru's DEBUG level).
    """
    run_dir = Path(run_dir)
    if not resume:
        check_new_run_dir(run_dir, framework, config)
    elif data is None:
        config = moved_data(run_dir, config)  # a table that is gone: how to give its new place
    ratings, split = data if data is not None else load_split(config)
    record = fingerprint(ratings)
    if resume:
        check_run_data(run_dir, ratings, record)
    trained, task = fit_batch_size(framework, config, split)
    trainer = make_backend(framework, trained, ratings.num_users, ratings.num_items)
    if resume and not has_checkpoint(run_dir / "checkpoint_latest"):
        raise ConfigError(
            f"--resume: {run_dir} has no checkpoint_latest to continue from: start a new run, in "
            "another folder or after removing this one"
        )
    ensure_folder(run_dir, "--run-dir")
    sink = logger.add(run_dir / "train.log", level="DEBUG")  # the restore's own lines go there too
    try:
        # Restored before config.json is written: a checkpoint that cannot be read, or a resume
        # that is refused, leaves the run's records as they were.
        restored = restore_progress(trainer, run_dir) if resume else None
        if restored is not None and restored.stopped_early:
            started_with = load_run_config(run_dir)[1].epochs
            if config.epochs > started_with:
                raise ConfigError(
                    f"--epochs: {run_dir} stopped early at step {restored.step} (its validation "
                    f"{SELECTION_METRIC} stopped improving), so more epochs would train nothing; start "
                    "a new run to train longer"
                )
        # Rewritten on resume too: ``--epochs`` may have been raised (scripts/train.py).
        write_json(run_dir / "config.json", run_config_data(framework, config), strict=False)
        write_json(run_dir / DATA_RECORD, record)
        logger.info("ratings from {}: {}; lists:\n{}", ratings.source, len(ratings), split.summary())
        logger.info("{} trainer on {}", framework, trainer.devices())
        if trained.batch_size != config.batch_size:
            logger.info(
                "--batch_size {}: an epoch trains {} lists, so each batch holds {} rows",
                config.batch_size,
                task.training_lists(),
                trained.batch_size,
            )
        logger.info("run folder {}; its config.json holds every option", run_dir)
        bar = console_bar(f"{framework} {config.task} {config.loss}") if progress_bar else None
        started, epoch_seconds = time.perf_counter(), []
        timed_from = restored.step if restored is not None else 0  # train() moves restored on
        with EventWriter(run_dir) as writer:
            progress = train(
                trained,
                task,
                trainer,
                run_dir,
                writer=writer,
                resume=resume,
                restored=restored,
                progress_bar=bar,
                after_step=after_step,
                epoch_seconds=epoch_seconds,
            )
        seconds = time.perf_counter() - started
        best = restore_with_fallback(trainer.restore, run_dir / "checkpoint_best")
        results = {
            "framework": framework,
            "task": config.task,
            "best_step": best.get("best_step", progress.best_step),  # of the weights evaluated
            "steps": progress.step,
            "stopped_early": progress.stopped_early,
            # This process's time: a resumed run's from the step it resumed at.
            "train_seconds": seconds,
            "epoch_seconds": epoch_seconds,
            "timed_from_step": timed_from,
            **beside_baselines(framework, trained, (ratings, split), task, trainer),
        }
        write_json(run_dir / "metrics.json", results)
        return results
    finally:
        logger.remove(sink)


def beside_baselines(
    framework: str, config: TrainConfig, data: tuple[Ratings, Split], task: Task, trainer: Backend
) -> dict:
    """The trainer's metrics on each evaluation column (``evaluation_columns``), how many
    lists each part counts, and the run's baselines (``RUN_BASELINES``) on the same lists with
    the trainer's paired differences (``compare``)."""
    ratings, split = data
    parts = ("test",) if config.refit else ("validation", "test")
    results = {
        column: task.evaluate(trainer, part, history=shown)
        for column, (part, shown) in evaluation_columns(config.task, config.refit).items()
    }
    results["lists"] = {part: task.counts(part) for part in parts}
    names = run_baselines(config.task, ratings.num_items)
    logger.info("fitting the baselines beside the model: {}", ", ".join(names))
    others = fit_baselines(names, config, ratings, split, framework_package(framework))
    return {**results, **compare(task, trainer, others, parts)}
