"""What a training run shows on the console: one short line per message, a progress bar that
the messages never break, and, when the run ends, its table and where its files are.

Lines fit in ``CONSOLE_COLUMNS``; the run's ``train.log``, ``metrics.json`` and TensorBoard
events hold everything the console leaves out.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from loguru import logger
from tqdm import tqdm

from ltr_common.config import SELECTION_METRIC, TrainConfig
from ltr_common.evaluation import metric_order
from ltr_common.stats import format_difference

CONSOLE_COLUMNS = 100
# Retrieval reports more metrics than a table shows: past this many, the cut-offs 10 and 20.
TABLE_METRICS = 8


def log_to_console(level: str = "INFO") -> None:
    """Send loguru's messages to stderr, a bare line each (warnings and errors named so).

    They go through ``tqdm.write``: an open progress bar is cleared first and drawn again
    below them, so a message never lands inside the bar. Global state: scripts call this
    once, at start-up.
    """
    logger.remove()
    logger.add(_write_past_bars, level=level, format=_line_format)


def _write_past_bars(message: str) -> None:
    tqdm.write(message, file=sys.stderr, end="")


def _line_format(record) -> str:
    if record["level"].no >= logger.level("WARNING").no:
        return "{level}: {message}\n{exception}"
    return "{message}\n{exception}"


def progress_bar(description: str) -> Callable[..., tqdm]:
    """A maker of step-counting bars on stderr (``ltr_common.loop.train``'s ``progress_bar``),
    as wide as the terminal, or ``CONSOLE_COLUMNS`` when stderr is no terminal."""

    def make(**kwargs) -> tqdm:
        width = None if sys.stderr.isatty() else CONSOLE_COLUMNS
        return tqdm(desc=description, unit="step", file=sys.stderr, ncols=width, **kwargs)

    return make


def aligned(rows: list[list[str]], *, indent: str = "") -> list[str]:
    """``rows`` of cells as lines, each column padded to its widest cell, two spaces apart:
    the first column (names) to the left, the others (numbers) to the right."""
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    return [
        indent
        + "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ).rstrip()
        for row in rows
    ]


def format_table(results: dict) -> str:
    """The model's metrics, a row each, a column per split; then, per split, the selection
    metric beside each baseline with the paired difference (model minus baseline) and its
    standard error."""
    parts = [p for p in ("validation", "test") if p in results]
    names = sorted(results[parts[-1]], key=metric_order)
    if len(names) > TABLE_METRICS:  # every metric is in metrics.json
        names = [n for n in names if n.endswith(("@10", "@20"))]
    rows = [["metric", *parts]] + [[n, *(f"{results[p][n]:.4f}" for p in parts)] for n in names]
    lines = aligned(rows)
    for part in parts:
        lines += ["", *_beside_baselines(results, part)]
    return "\n".join(lines)


def _beside_baselines(results: dict, part: str) -> list[str]:
    counts = results.get("lists", {}).get(part, {})
    title = (
        f"{part} {SELECTION_METRIC} on the same {counts.get('lists', '?')} lists "
        f"({counts.get('left out', 0)} left out)"
    )
    rows = [
        ["", SELECTION_METRIC, "model minus baseline ± paired s.e."],
        ["model", f"{results[part][SELECTION_METRIC]:.4f}"],
    ]
    for name, by_part in results.get("baselines", {}).items():
        mean, se, _ = results["paired"][name][part][SELECTION_METRIC]
        rows.append([name, f"{by_part[part][SELECTION_METRIC]:.4f}", format_difference(mean, se)])
    return [title, *aligned(rows, indent="  ")]


def run_summary(framework: str, config: TrainConfig, results: dict, run_dir: Path) -> str:
    """What a run prints when it ends: which weights were tested, the table (``format_table``),
    and last where the run's files are and how to see its curves in TensorBoard."""
    stopped = ", stopped early" if results["stopped_early"] else ""
    if config.refit:
        tested = f"the last weights, step {results['steps']}"
    else:
        tested = f"best validation {SELECTION_METRIC} at step {results['best_step']} of {results['steps']}"
    return "\n".join(
        [
            f"\n{framework} {config.loss}: {tested}{stopped}, {results['train_seconds']:.0f} s of training",
            format_table(results),
            "",
            f"saved in {run_dir}: metrics.json, checkpoint_best, TensorBoard events",
            # The parent folder (``runs`` by default): this run's curves beside the others'.
            f"curves of its runs: tensorboard --logdir {run_dir.parent}  (pip install tensorboard)",
        ]
    )
