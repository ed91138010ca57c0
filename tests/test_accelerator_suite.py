"""scripts/accelerator_suite.sh in its tiny mode on the CPU: the script a GPU machine runs,
end to end (the carried wheels installed without the network, every section written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ltr_bench.running_sums import CANDIDATES
from tests._scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _wheel(folder: Path) -> Path:
    """A minimal wheel of a module ``carried_probe``: what the script installs with pip --no-index."""
    path = folder / "carried_probe-1.0-py3-none-any.whl"
    info = "carried_probe-1.0.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("carried_probe.py", "CARRIED = True\n")
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: carried-probe\nVersion: 1.0\n")
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    return path


@pytest.mark.slow
def test_tiny_suite_writes_every_section(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels)
    out = tmp_path / "docs" / "gpu.md"
    env = {**os.environ, "PYTHON": sys.executable}
    command = ["bash", str(ROOT / "scripts" / "accelerator_suite.sh"), "--wheels", str(wheels)]
    command += ["--tiny", "--runs", "2", "--budget-s", "600", "--out", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    for heading in (
        "## The ListMLE family at 3x7",
        "## The pairwise family at 3x7",
        "## Every loss at 3x7",
        "## The ListMLE family on continuous labels",
        "## Every loss in bfloat16",
        "## ListMLE's suffix log-sum-exp",
        "## ListMLE's running sum alone",
        "## Trainers",
        "## Peak device memory",
    ):
        assert heading in report, heading
    raw = json.loads(out.with_suffix(".json").read_text())
    rows = [row for grid in raw["grids"] for row in grid["rows"]]
    timed = [row for row in rows if "median_ms" in row]
    assert not [row for row in rows if "skipped" in row and "failed" in row["skipped"]]
    # the default call of each loss and the trainer's (sampled pairs), JAX and PyTorch,
    # agreeing on the value; no cell run twice
    assert {(r["loss"], r["implementation"]) for r in timed} >= {
        ("listmle", "jax"),
        ("listmle", "torch eager"),
        ("softmax", "jax"),
        ("softmax", "torch eager"),
        *(("pairwise_pl", name) for name in ("jax", "jax trainer", "torch eager", "torch eager trainer")),
    }
    cells = [(r["loss"], r["implementation"], r["labels"], r["dtype"]) for r in rows]
    assert len(cells) == len(set(cells))
    for row in timed:
        assert row["vs_ref"] < (1e-5 if row["dtype"] == "float32" else 2e-2), row
    # every running-sum candidate timed, each within L ulps of a float64 sum (L = 7 here)
    assert {r["candidate"] for r in raw["running_sums"]} == set(CANDIDATES)
    for row in raw["running_sums"]:
        assert row["median_ms"] > 0 and row["max_rel_error"] <= 7 * 2**-23, row
    assert {(r["task"], r["framework"]) for r in raw["train"]} == {
        (task, framework) for task in ("retrieve", "rerank") for framework in ("jax", "torch")
    }


def test_the_suite_refuses_a_cpu_and_a_missing_wheel_folder(tmp_path, capsys):
    # The CPU check in this process (the script's main, as the shell script runs it); the
    # wheel folder's in the shell script, which stops before Python starts.
    assert load_script("accelerator_suite").main(["--out", str(tmp_path / "gpu.md")]) == 1
    assert "JAX sees no accelerator (give --tiny or --allow-cpu" in capsys.readouterr().err
    assert not (tmp_path / "gpu.md").exists()
    env = {**os.environ, "PYTHON": sys.executable}
    script = str(ROOT / "scripts" / "accelerator_suite.sh")
    done = subprocess.run(
        ["bash", script, "--wheels", str(tmp_path / "nowhere")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and f"--wheels: no folder {tmp_path / 'nowhere'}" in done.stderr


def test_every_running_sum_candidate_is_within_its_rounding_bound():
    # Lists longer than the blocked matmul's blocks, with shares spread over many orders of
    # magnitude (scores of standard deviation 4), where subtracting a block's own total from
    # the sum after it would cancel: each candidate only adds terms >= 0, so each sum is within
    # (L - 1) units of roundoff of itself.
    import numpy as np

    from ltr_bench.running_sums import BLOCK, relative_errors

    length = 5 * BLOCK + 3
    scores = np.random.default_rng(0).normal(0.0, 4.0, (length, 6))
    shares = np.exp(scores - scores.max(axis=0)).astype(np.float32)
    errors = relative_errors(shares)
    assert set(errors) == set(CANDIDATES)
    for name, error in errors.items():
        assert error <= (length - 1) * 2.0**-24, (name, error)
