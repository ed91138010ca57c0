"""scripts/benchmark.py on a tiny grid: every implementation computes the same loss, the
outputs are written whole, and what cannot run says why. (It times nothing that is asserted.)
Rax is part of the test extra, so its rows run here too. Its --help and --quick: every
option's default and every registered name shown, the preset as if typed."""

from __future__ import annotations

import csv
import json
import re
import shlex

import pytest

from ltr_bench.grid import GridOptions, grid_text
from ltr_bench.registry import LOSS_NAMES, implementation_names
from ltr_common.losses import LOSSES
from tests._scripts import load_script


@pytest.fixture(scope="module")
def bench_script():
    return load_script("benchmark")


@pytest.mark.slow
def test_tiny_grid_writes_agreeing_rows(bench_script, tmp_path, capsys):
    names = ["jax", "jax scan levels", "torch eager", "original loop", "rax"]
    # The grids here assert what is computed, never how fast: no warm-up of the turns (its own
    # test is the last one here).
    flags = ["--grid", "3x7", "--runs", "2", "--dtypes", "float32,bfloat16", "--modes", "forward+backward"]
    flags += ["--labels", "ratings", "--warm-up-s", "0"]
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
    flags += ["--warm-up-s", "0", "--labels", "continuous"]
    assert bench_script.main([*flags, "--implementations", "jax", "jax scan levels"]) == 0
    out = capsys.readouterr().out
    assert (
        "| listmle | jax scan levels | continuous | 3x7 | float32 | forward+backward | n/a | levels need"
        in out
    )
    assert "| listmle | jax | continuous | 3x7 | float32 | forward+backward | " in out


def test_the_original_loop_is_not_run_past_its_size_limit(bench_script, capsys):
    flags = ["--grid", "2x40", "--runs", "2", "--loop-max-items", "50", "--losses", "listmle"]
    flags += ["--warm-up-s", "0"]
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
        (["--warm-up-s", "-1"], "--warm-up-s: need finite seconds >= 0"),
        (["--warm-up-s", "inf"], "--warm-up-s: need finite seconds >= 0"),
        (["--warm-up-s", "nan"], "--warm-up-s: need finite seconds >= 0"),
        (["--train-batch-sizes", "32,0"], "batch sizes must be >= 1"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            bench_script.parse_args(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_what_an_extra_installs_is_named_before_any_timing(bench_script, capsys, monkeypatch, tmp_path):
    """Rax and matplotlib come with the bench extra: asked for without it, the error says so
    before anything is timed (--out's plot used to fail after the whole grid)."""
    import importlib.util

    import ltr_bench.grid

    for argv, message in (  # Rax installed: a misspelt name, or none, is unknown
        (["--implementations", "jax", "rax foo"], "--implementations: unknown ['rax foo']"),
        (["--implementations", ""], "--implementations: unknown ['']"),
    ):
        with pytest.raises(SystemExit):
            bench_script.parse_args(argv)
        assert message in capsys.readouterr().err
    names = [n for n in ltr_bench.grid.implementation_names() if n != "rax"]
    monkeypatch.setattr(ltr_bench.grid, "implementation_names", lambda: names)
    real, absent = importlib.util.find_spec, ("matplotlib", "rax")
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in absent else real(n, *a))
    for argv, message in (
        (
            ["--implementations", "jax", "rax"],
            "rax needs Rax: rax is not installed: pip install -e '.[bench]'",
        ),
        (["--out", str(tmp_path / "out")], "--out: its plot needs matplotlib: matplotlib is not installed"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            bench_script.parse_args(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _help_entries(bench_script, monkeypatch) -> dict[str, str]:
    """``--help``'s text of each option, by its first flag, on one line each."""
    monkeypatch.setenv("COLUMNS", "400")  # argparse wraps at the terminal's width: none here
    text = bench_script.build_parser().format_help()
    entries, flag = {}, None
    for line in text.split("\noptions:\n", 1)[1].splitlines():
        if line.startswith("  -"):
            flag = line.split()[0].rstrip(",")
            entries[flag] = line.strip()
        elif line.startswith("    ") and flag is not None:
            entries[flag] += " " + line.strip()
        else:
            flag = None
    return entries


def test_help_shows_every_default_and_the_registered_names(bench_script, monkeypatch):
    entries = _help_entries(bench_script, monkeypatch)
    defaults = bench_script.parse_args([])
    options = {"--" + dest.replace("_", "-") for dest in vars(defaults)} - {"--grid-options"}
    assert set(entries) - {"-h"} == options
    for flag, entry in entries.items():
        assert flag == "-h" or "(default: " in entry, entry
    shown = {flag: re.search(r"\(default: ([^)]*)\)$", entry) for flag, entry in entries.items()}
    assert shown["--runs"][1] == str(defaults.runs) == str(GridOptions().runs)
    assert shown["--grid"][1] == grid_text(GridOptions().grid)
    assert shown["--losses"][1] == ",".join(defaults.losses) == ",".join(LOSS_NAMES)
    listed = re.search(r"any of (.*) \(default", entries["--losses"])[1].split(", ")
    assert listed == list(LOSS_NAMES)
    listed = re.search(r"any of: (.*) \(default", entries["--implementations"])[1]
    assert shlex.split(listed.replace(",", "")) == implementation_names()
    assert {"jax", "torch eager", "torch.compile", "rax"} <= set(implementation_names())


def test_quick_is_its_preset_as_typed_and_given_options_win(bench_script):
    quick = bench_script.parse_args(["--quick"])
    typed = bench_script.parse_args(shlex.split(bench_script.preset_flags(bench_script.QUICK)))
    assert vars(quick) == {**vars(typed), "quick": True}
    full = bench_script.parse_args([])
    assert len(quick.grid) < len(full.grid) and quick.runs < full.runs
    assert quick.train and not full.train and quick.main_job is None
    assert set(quick.implementations) < set(implementation_names())
    for argv in (
        ["--quick", "--runs", "3", "--losses", "listmle"],
        ["--runs", "3", "--losses", "listmle", "--quick"],
    ):
        given = bench_script.parse_args(argv)
        assert given.grid_options.runs == 3 and given.grid_options.losses == ("listmle",)
        assert given.grid_options.grid == quick.grid_options.grid and given.train
    assert not bench_script.parse_args(["--quick", "--no-train"]).train
    assert bench_script.parse_args(["--quick", "--main-job", "rerank"]).main_job == ["rerank"]


def test_each_turn_warms_up_for_its_time_and_a_failed_warm_up_leaves_the_turns(monkeypatch):
    import types

    from ltr_bench import timing
    from ltr_bench.registry import Impl

    clock = {"now": 0.0}
    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    log: list[str] = []

    def prepared(name: str, seconds: float, fails_at: int | None = None):
        calls = {"n": 0}

        def call():
            calls["n"] += 1
            if calls["n"] == fails_at:  # that call alone: the ones after it would pass
                raise RuntimeError(f"{name} ran out of memory")
            clock["now"] += seconds
            log.append(name)

        return {"call": call, "first_s": seconds, "memory_bytes": None, "value": 0.0}

    sizes = {"short": (0.004, None), "long": (0.2, None), "breaks": (0.004, 6)}
    monkeypatch.setattr(timing, "prepare_torch", lambda impl, *_: prepared(impl.name, *sizes[impl.name]))
    impls = [Impl(name, "listmle", "torch", None, compiled=False) for name in sizes]
    results = timing.time_cells(impls, None, "float32", "forward+backward", runs=2)
    # "breaks": its first call, four warm-up calls, the fifth fails: no timed call after it.
    assert results[2]["failed"].startswith("failed: RuntimeError: breaks ran out of memory")
    assert log.count("breaks") == 5
    # The short call: its first (untimed) call, then per turn ceil(0.03 / 0.004) = 8 untimed
    # calls and the timed one; the long call is timed with no warm-up.
    assert log.count("short") == 1 + 2 * (8 + 1)
    assert log.count("long") == 1 + 2
    assert results[0]["times"] == pytest.approx([0.004, 0.004])
    assert results[1]["times"] == pytest.approx([0.2, 0.2])
    assert (timing.WARM_UP_BELOW_S, timing.WARM_UP_FOR_S) == (0.05, 0.03)
    # A warm-up of 0 s given: one untimed call a turn.
    log.clear()
    timing.time_cells(impls[:2], None, "float32", "forward+backward", runs=2, warm_up_s=0.0)
    assert log.count("short") == 1 + 2 * (1 + 1)
    with pytest.raises(ValueError, match="warm_up_s: need finite seconds >= 0"):
        timing.time_cells(impls[:2], None, "float32", "forward+backward", runs=2, warm_up_s=float("inf"))
