"""The console of a training run: lines that fit 100 columns, a progress bar no message
breaks, the same evaluation line from both frameworks, an aligned table, and a last line
that says where the run's files are."""

from __future__ import annotations

import dataclasses
import json
import re
import sys

import pytest
from loguru import logger

from ltr_common.config import SELECTION_METRIC
from ltr_common.evaluation import CONSOLE_METRICS, HEADLINE
from ltr_common.loop import train
from ltr_common.tasks import make_task
from ltr_train import format_table, log_to_console, make_backend
from ltr_train.console import CONSOLE_COLUMNS
from tests._scripts import load_script
from tests._small import SMALL, small_data

EVALUATION_LINE = re.compile(r"^step \d+ epoch \d+ val ")


def shown_metrics(line: str) -> list[str]:
    """The metric names of an evaluation line, in its order."""
    return re.findall(r"(\S+)=-?\d", line)


def assert_in_the_shared_order(names: list[str]) -> None:
    assert 1 <= len(names) <= CONSOLE_METRICS and names[0] == SELECTION_METRIC, names
    assert names == [name for name in HEADLINE if name in names], names


@pytest.fixture
def console():
    """Loguru set up as ``scripts/train.py`` sets it up when started, then as loguru starts
    (request it before ``capsys``: the stream it restores is the one before capsys)."""
    stream = sys.stderr
    log_to_console()
    yield
    logger.remove()
    logger.add(stream)


@pytest.fixture
def small_run_data(monkeypatch):
    """``scripts/train.py`` trains on the small synthetic data instead of MovieLens."""
    monkeypatch.setattr(sys.modules["ltr_train.run"], "load_split", lambda config: small_data())


def test_a_default_runs_console_fits_100_columns(console, tmp_path, monkeypatch, capsys, small_run_data):
    monkeypatch.chdir(tmp_path)  # the run goes to runs/<framework>-<loss>-<time>, the default
    options = tmp_path / "small.json"
    options.write_text(json.dumps(SMALL.to_dict()))
    argv = ["--config", str(options), "--compilation_cache", "false"]  # no global JAX cache here
    assert load_script("train").main(argv) == 0
    out, err = capsys.readouterr()
    # A terminal starts a line again at "\n" and at "\r" (where the bar redraws itself).
    lines = re.split(r"[\r\n]", err + out)
    too_long = [line for line in lines if len(line) > CONSOLE_COLUMNS]
    assert not too_long, too_long

    bar = f"jax {SMALL.task} {SMALL.loss}:"
    drawn = [line for line in lines if "%|" in line]
    assert drawn and all(line.startswith(bar) and line.endswith("]") for line in drawn), drawn
    evaluations = [line for line in lines if EVALUATION_LINE.match(line)]
    assert len(evaluations) >= 2  # every eval_every steps and each epoch's end
    for line in evaluations:
        assert_in_the_shared_order(shown_metrics(line))
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(shown_metrics(evaluations[-1])) < set(metrics["validation"])  # the file has them all

    saved, last = out.rstrip("\n").splitlines()[-2:]
    assert str(run_dir.relative_to(tmp_path)) in saved and "metrics.json" in saved, saved
    assert "tensorboard --logdir runs " in last and "pip install tensorboard" in last, last


@pytest.mark.parametrize(
    "changes",
    [{}, {"task": "retrieve", "model": "dot", "negatives": 20}],
    ids=["rerank", "retrieve"],
)
def test_both_frameworks_print_the_same_metrics_in_the_same_order(tmp_path, changes):
    config = dataclasses.replace(SMALL, epochs=1, eval_every=100, **changes)  # one evaluation
    ratings, split = small_data()
    printed = {}
    for framework in ("jax", "torch"):
        lines = []
        sink = logger.add(lines.append, format="{message}", level="INFO")
        try:
            trainer = make_backend(framework, config, ratings.num_users, ratings.num_items)
            train(config, make_task(config, split), trainer, tmp_path / framework)
        finally:
            logger.remove(sink)
        (line,) = [line for line in lines if EVALUATION_LINE.match(line)]
        printed[framework] = shown_metrics(line)
    assert printed["jax"] == printed["torch"]
    assert_in_the_shared_order(printed["jax"])
    assert len(printed["jax"]) == CONSOLE_METRICS  # each task has five of the headline metrics


def test_the_table_pads_each_column_and_heads_it():
    names = (SELECTION_METRIC, "liked/recall@10", "mrr")
    results = {
        "validation": {name: 0.5 for name in names},
        "test": {name: 0.25 for name in names},
        "lists": {"validation": {"lists": 9, "left out": 1}, "test": {"lists": 10, "left out": 0}},
        "baselines": {
            "a_long_baseline_name": {"validation": {SELECTION_METRIC: 0.125}, "test": {SELECTION_METRIC: 0.5}}
        },
        "paired": {
            "a_long_baseline_name": {
                "validation": {SELECTION_METRIC: [0.375, 0.01, 9]},
                "test": {SELECTION_METRIC: [-0.25, 0.02, 10]},
            }
        },
    }
    blocks = [block.splitlines() for block in format_table(results).split("\n\n")]
    assert len(blocks) == 3  # the metrics, then each split beside the baselines
    header, *rows = blocks[0]
    assert [row.split()[0] for row in rows] == [SELECTION_METRIC, "mrr", "liked/recall@10"]
    for row in rows:  # numbers end where their heading ends
        assert row.split()[1:] == ["0.5000", "0.2500"] and len(row) == len(header)
        assert row.index("0.5000") + len("0.5000") == header.index("validation") + len("validation")
    for block in blocks[1:]:
        heading, *rows = block[1:]
        assert [row.split()[0] for row in rows] == ["model", "a_long_baseline_name"]
        model, baseline = rows
        assert (
            model.index("0.") + 6
            == baseline.index("0.") + 6
            == heading.index(SELECTION_METRIC) + len(SELECTION_METRIC)
        )
        assert len(baseline) == len(heading)  # the difference ends under its heading
