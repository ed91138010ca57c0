"""The training loop's progress bar: its total follows an early stop, and it is closed however
the loop ends. A stub task and backend stand in for a framework, so nothing is compiled."""

from __future__ import annotations

import dataclasses
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from ltr_common.config import SELECTION_METRIC
from ltr_common.loop import NonFiniteError, train
from tests._small import SMALL

STEPS_PER_EPOCH = 4


class StubTask:
    """Four steps an epoch; validation scores ``scores`` in turn (the last one repeated)."""

    name = "stub"

    def __init__(self, scores):
        self.scores, self.evaluations = list(scores), 0

    def steps_per_epoch(self):
        return STEPS_PER_EPOCH

    def epoch_inputs(self, *, epoch, start_batch=0):
        for _ in range(start_batch, STEPS_PER_EPOCH):
            yield SimpleNamespace(list_ids=np.arange(3)), None

    def evaluate(self, scorer, part, *, history="all"):
        score = self.scores[min(self.evaluations, len(self.scores) - 1)]
        self.evaluations += 1
        return {SELECTION_METRIC: score}


class StubBackend:
    def __init__(self, loss=1.0):
        self.loss = loss

    def train_step(self, batch, pairs):
        return {"loss_total": self.loss, "grad_norm": 1.0}

    def metrics_to_host(self, metrics):
        return metrics

    def learning_rate(self, step):
        return 0.1

    def save(self, paths, progress, *, background=False):
        pass

    def finish_saves(self):
        pass


class RecordingBar:
    """A progress bar that remembers what the loop did with it."""

    def __init__(self, total, initial=0):
        self.total, self.n, self.status, self.closed = total, initial, "", False

    def update(self, n=1):
        self.n += n

    def set_postfix_str(self, s="", refresh=True):
        self.status = s

    def refresh(self):
        pass

    def close(self):
        self.closed = True


@pytest.fixture
def bars():
    """``(bars made, the maker to hand the loop)``."""
    made = []

    def make(**kwargs):
        made.append(RecordingBar(**kwargs))
        return made[-1]

    return made, make


def config(**changes):
    return dataclasses.replace(SMALL, **{"epochs": 5, "eval_every": 100, **changes})


def test_a_whole_run_fills_the_bar_and_closes_it(tmp_path, bars):
    progress = train(
        config(), StubTask([0.1, 0.2, 0.3, 0.4, 0.5]), StubBackend(), tmp_path, progress_bar=bars[1]
    )
    (bar,) = bars[0]
    assert not progress.stopped_early and progress.step == 5 * STEPS_PER_EPOCH
    assert (bar.n, bar.total, bar.closed) == (20, 20, True)
    assert bar.status == "epoch 5/5, loss 1.0000"


def test_an_early_stop_ends_the_bar_full_where_the_run_stopped(tmp_path, bars):
    # Best at the first evaluation, then two without a better one: stopped after epoch 3 of 5.
    task = StubTask([0.5, 0.4])
    progress = train(config(early_stop_patience=2), task, StubBackend(), tmp_path, progress_bar=bars[1])
    (bar,) = bars[0]
    assert progress.stopped_early and progress.step == 3 * STEPS_PER_EPOCH and task.evaluations == 3
    assert (bar.n, bar.total, bar.closed) == (12, 12, True)
    assert bar.status == "stopped early in epoch 3/5"


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_exception_in_the_loop_closes_the_bar(tmp_path, bars, error):
    def interrupt(progress):
        if progress.step == 6:
            raise error

    with pytest.raises(error):
        train(
            config(),
            StubTask([0.1]),
            StubBackend(),
            tmp_path,
            progress_bar=bars[1],
            after_step=interrupt,
        )
    (bar,) = bars[0]
    assert bar.closed and bar.n == 6


def test_a_non_finite_loss_closes_the_bar(tmp_path, bars):
    # before any checkpoint: the message offers nothing to resume
    message = "step 1: non-finite loss_total=nan; no checkpoint was written, so there is nothing to "
    message += f"resume: remove {tmp_path}"
    with pytest.raises(NonFiniteError, match=re.escape(message)):
        train(config(), StubTask([0.1]), StubBackend(loss=math.nan), tmp_path, progress_bar=bars[1])
    (bar,) = bars[0]
    assert bar.closed


class FailingSavesBackend(StubBackend):
    """Its background checkpoint writes fail; ``finish_saves`` raises that and counts its calls."""

    finished = 0

    def finish_saves(self):
        self.finished += 1
        raise OSError("disk full")


def test_the_runs_own_error_is_raised_when_a_checkpoint_write_failed_too(tmp_path, bars):
    from loguru import logger

    def interrupt(progress):
        if progress.step == 6:
            raise KeyboardInterrupt

    logged = []
    sink = logger.add(logged.append, level="ERROR", format="{message}")
    backend = FailingSavesBackend()
    try:
        with pytest.raises(KeyboardInterrupt):
            train(config(), StubTask([0.1]), backend, tmp_path, progress_bar=bars[1], after_step=interrupt)
    finally:
        logger.remove(sink)
    assert backend.finished == 1 and bars[0][0].closed
    assert [str(m).strip() for m in logged] == ["a checkpoint write failed as well: OSError: disk full"]
    with pytest.raises(OSError, match="disk full"):  # with nothing else in flight, it is the error
        train(config(epochs=1), StubTask([0.1]), FailingSavesBackend(), tmp_path, progress_bar=bars[1])


def test_mid_epoch_the_loop_reads_the_steps_before_the_newest_log_every_and_all_before_a_checkpoint(
    tmp_path,
):
    # Every LOG_EVERY steps the steps a device may still be running (the newest LOG_EVERY)
    # stay unread; before each evaluation and checkpoint every step is read and checked.
    from ltr_common import loop

    every = loop.LOG_EVERY
    per_epoch = 3 * every + 3  # mid-epoch reads at 2 * every and 3 * every steps into the run

    class LongEpochs(StubTask):
        def steps_per_epoch(self):
            return per_epoch

        def epoch_inputs(self, *, epoch, start_batch=0):
            for _ in range(start_batch, per_epoch):
                yield SimpleNamespace(list_ids=np.arange(3)), None

    class Recording(StubBackend):
        def __init__(self):
            super().__init__()
            self.step, self.reads, self.saved_after = 0, [], []

        def train_step(self, batch, pairs):
            self.step += 1
            return {"loss_total": self.loss, "grad_norm": 1.0, "step": self.step}

        def metrics_to_host(self, metrics):
            self.reads.append((self.step, [m["step"] for m in metrics]))
            return [{k: v for k, v in m.items() if k != "step"} for m in metrics]

        def save(self, paths, progress, *, background=False):
            self.saved_after.append(self.reads[-1][1][-1])  # the last step read before it

    backend = Recording()
    train(config(epochs=2), LongEpochs([0.1, 0.2]), backend, tmp_path)
    assert [s for _, read in backend.reads for s in read] == list(range(1, 2 * per_epoch + 1))
    assert backend.saved_after == [per_epoch, 2 * per_epoch]  # every step read before a save
    at = [(now, read[-1]) for now, read in backend.reads]
    mid = [now for now, last in at if now != last]
    assert mid and all(now % every == 0 and now - last == every for now, last in at if now != last)
    assert len(mid) + 2 == len(at)  # two evaluations read through their step


def test_a_nan_step_is_caught_before_the_checkpoint_after_it(tmp_path):
    class NanAt(StubBackend):
        def __init__(self, bad):
            super().__init__()
            self.bad, self.step, self.saves = bad, 0, 0

        def train_step(self, batch, pairs):
            self.step += 1
            return {"loss_total": math.nan if self.step == self.bad else 1.0, "grad_norm": 1.0}

        def save(self, paths, progress, *, background=False):
            self.saves += 1

    backend = NanAt(bad=STEPS_PER_EPOCH + 1)  # the second epoch's first step
    with pytest.raises(NonFiniteError, match=f"step {STEPS_PER_EPOCH + 1}: non-finite loss_total=nan"):
        train(config(), StubTask([0.1, 0.2]), backend, tmp_path)
    assert backend.saves == 1  # the first epoch's checkpoint, none after the NaN step
