"""scripts/benchmark.py on a tiny grid: every implementation computes the same loss, the
outputs are written whole, and what cannot run says why. (It times nothing that is asserted.)
Rax is part of the test extra, so its rows run here too."""

from __future__ import annotations

import csv
import json

import pytest

from ltr_common.losses import LOSSES
from tests.test_training import load_script


@pytest.fixture(scope="module")
def bench_script():
    return load_script("benchmark")


def test_tiny_grid_writes_agreeing_rows(bench_script, tmp_path, capsys):
    names = ["jax", "jax scan levels", "torch eager", "original loop", "rax"]
    flags = ["--grid", "3x7", "--runs", "2", "--dtypes", "float32,bfloat16", "--modes", "forward+backward"]
    flags += ["--labels", "ratings"]
    code = bench_script.main([*flags, "--out", str(tmp_path), "--implementations", *names])
    assert code == 0
    out = capsys.readouterr().out
    assert (
        "| listmle | original loop | ratings | 3x7 | bfloat16 | forward+backward | n/a | not run in bf" in out
    )
    rows = json.loads((tmp_path / "benchmark.json").read_text())["rows"]
    timed = [r for r in rows if "median_ms" in r]
    # Every implementation runs for each loss/mode/dtype it supports (the loop in float32 only),
    # and every registered loss gets its jax and torch rows from the registry alone.
    assert {r["implementation"] for r in timed} == set(names)
    for loss in LOSSES:
        assert {r["implementation"] for r in timed if r["loss"] == loss} >= {"jax", "torch eager"}, loss
    for row in timed:
        assert row["q1_ms"] <= row["median_ms"] <= row["q3_ms"] and row["runs"] == 2
        tolerance = 1e-5 if row["dtype"] == "float32" else 2e-2
        assert row["vs_ref"] < tolerance, row
    with open(tmp_path / "benchmark.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    assert (tmp_path / "benchmark.png").read_bytes().startswith(b"\x89PNG")


def test_continuous_labels_run_without_levels(bench_script, capsys):
    flags = ["--grid", "3x7", "--runs", "2", "--losses", "listmle", "--modes", "forward+backward"]
    assert (
        bench_script.main([*flags, "--labels", "continuous", "--implementations", "jax", "jax scan levels"])
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "| listmle | jax scan levels | continuous | 3x7 | float32 | forward+backward | n/a | levels need"
        in out
    )
    assert "| listmle | jax | continuous | 3x7 | float32 | forward+backward | " in out


def test_the_original_loop_is_not_run_past_its_size_limit(bench_script, capsys):
    flags = ["--grid", "2x40", "--runs", "2", "--loop-max-items", "50", "--losses", "listmle"]
    assert bench_script.main([*flags, "--modes", "forward", "--implementations", "original loop"]) == 0
    out = capsys.readouterr().out
    assert (
        "| listmle | original loop | ratings | 2x40 | float32 | forward | n/a | B*L > --loop-max-items 50"
        in out
    )


def test_bad_arguments_name_the_flag(bench_script, capsys):
    for argv, message in (
        (["--grid", "10by20"], "--grid: expected BxL pairs like 1024x200"),
        (["--losses", "listnet"], "expected a comma list of listmle, pairwise_pl, hybrid"),
        (["--implementations", "numpy"], "--implementations: unknown ['numpy']"),
        (["--labels", "grades"], "expected a comma list of ratings, continuous"),
        (["--runs", "1"], "--runs: need at least 2 timed calls"),
        (["--train-batch-sizes", "32,0"], "batch sizes must be >= 1"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            bench_script.parse_args(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
