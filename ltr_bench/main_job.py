"""The main job: ``python scripts/train.py`` with each task's default configuration, as a user
runs it, PyTorch against JAX (with an empty compilation cache, then with the one it left)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ltr_common import load_split
from ltr_common.config import SELECTION_METRIC, for_task
from ltr_common.movielens import default_cache_dir

TRAIN_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train.py"

MAIN_JOB_RUNS = (("torch", "torch", False), ("jax cold", "jax", True), ("jax warm", "jax", False))


def run_main_job(tasks=("retrieve", "rerank"), *, work: Path | None = None) -> list[dict]:
    """``python scripts/train.py`` with the default configuration of each task, as a user runs
    it, side by side: PyTorch, then JAX with an empty compilation cache (cold), then JAX again
    with the cache the cold run left (warm). Each run is its own process; ``seconds`` is its
    wall time, start-up and imports included. ``epoch_seconds`` is the median of the epochs
    after the first (steps, host inputs, evaluation and checkpoints: the steady state), from
    the run's ``metrics.json``. The three runs train the same lists and must agree. The runs
    write in folder ``work``, or without one in a temporary folder removed at the end."""
    if work is None:
        with tempfile.TemporaryDirectory(prefix="ltr-bench-main-job-") as folder:
            return run_main_job(tasks, work=Path(folder))
    load_split(for_task("rerank"))  # the ratings in the user's data cache, fetched if need be
    data_dir = os.environ.get("JAX_LTR_DATA_DIR") or str(default_cache_dir() / "ml-100k")
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    rows = []
    for task in tasks:
        cache = work / task / "cache"  # compiled programs only: empty before the cold run
        for label, framework, cold in MAIN_JOB_RUNS:
            if cold and cache.exists():
                raise SystemExit(f"--main-job: {cache} should not exist before the cold run")
            run_dir = work / task / label.replace(" ", "-")
            command = [sys.executable, str(TRAIN_SCRIPT), "--framework", framework]
            command += ["--task", task, "--data_dir", data_dir, "--cache_dir", str(cache)]
            command += ["--run-dir", str(run_dir), "--no-progress"]
            start = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"--main-job: {' '.join(command)} failed:\n{done.stderr[-3000:]}")
            metrics = json.loads((run_dir / "metrics.json").read_text())
            rows.append(
                {
                    "task": task,
                    "run": label,
                    "seconds": seconds,
                    "epochs": len(metrics["epoch_seconds"]),
                    # after the first (compiling) epoch; a one-epoch run has only that one
                    "epoch_seconds": statistics.median(
                        metrics["epoch_seconds"][1:] or metrics["epoch_seconds"]
                    ),
                    "steps": metrics["steps"],
                    f"test_{SELECTION_METRIC}": metrics["test"][SELECTION_METRIC],
                }
            )
            print(f"{task} {label}: {seconds:.1f} s", file=sys.stderr)
    return rows


def main_job_table(rows: list[dict]) -> str:
    """``run_main_job``'s rows as a markdown table, each run against PyTorch's of its task."""
    lines = [
        "| task | run | wall s | vs torch | epochs | steady epoch ms | torch epoch / this "
        f"| test {SELECTION_METRIC} |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        torch_row = next(r for r in rows if r["task"] == row["task"] and r["run"] == "torch")
        lines.append(
            f"| {row['task']} | {row['run']} | {row['seconds']:.1f} "
            f"| {row['seconds'] / torch_row['seconds']:.2f}x "
            f"| {row['epochs']} | {row['epoch_seconds'] * 1e3:.0f} "
            f"| {torch_row['epoch_seconds'] / row['epoch_seconds']:.2f}x "
            f"| {row[f'test_{SELECTION_METRIC}']:.4f} |"
        )
    return "\n".join(lines)
