"""scripts/check_parity.py: the table, the JSON, and a non-zero exit when a row fails."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import torch_ltr

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_parity.py"


def load_script():
    spec = importlib.util.spec_from_file_location("check_parity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_passing_table_and_json(tmp_path, capsys, movielens):
    out = tmp_path / "parity.json"
    args = ["--batches", "1", "--dtype", "float64", "--functions", "mrr", "--json", str(out)]
    code = load_script().main(args)
    assert code == 0
    text = capsys.readouterr().out
    assert "| mrr | default | float64 | jit |" in text and "2 passed, 0 failed" in text
    rows = json.loads(out.read_text())
    assert len(rows) == 2 and all(r["passed"] for r in rows)
    assert rows[0]["reductions"] == ["none", "sum", "mean"] and rows[1]["reductions"] == ["none"]


def test_a_wrong_reference_fails_the_run(capsys, monkeypatch, movielens):
    real = torch_ltr.mrr
    monkeypatch.setattr(torch_ltr, "mrr", lambda *a, **k: real(*a, **k) * 1.001)
    code = load_script().main(["--batches", "1", "--dtype", "float32", "--functions", "mrr"])
    assert code == 1
    assert "0 passed, 2 failed" in capsys.readouterr().out


def test_impossible_arguments_are_one_line_and_status_2(capsys):
    script = load_script()
    for argv, message in (
        (["--lists-per-batch", "0"], "--lists-per-batch: expected an integer >= 1, got 0"),
        (["--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
        (["--training", "-2"], "--training: expected an integer >= 0, got -2"),
        (["--batches", "0"], "--batches: expected an integer >= 1, got 0"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            script.parse_args(argv)
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"error: {message}")


def test_a_misspelt_function_is_refused_with_the_known_names(capsys):
    assert load_script().main(["--batches", "1", "--functions", "mrr", "listmle"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("--functions: unknown ['listmle']; known: ") and "listmle_loss" in line


def test_an_unwritable_json_path_is_one_line_and_status_1(tmp_path, capsys, movielens):
    code = load_script().main(
        ["--batches", "1", "--dtype", "float64", "--functions", "mrr", "--json", "/proc/nope/rows.json"]
    )
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert ": error: " in err[-1] and "/proc/nope" in err[-1]
    assert not any("Traceback" in line for line in err)


def test_the_gradient_drift_with_the_scores_size(capsys):
    script = load_script()
    assert script.main(["--scales", "10,1e4"]) == 0
    out = capsys.readouterr().out
    assert "| scale | jax_ltr max error | torch_ltr max error |" in out and "| 10000 |" in out
    # jax_ltr's float32 gradient is computed from shares of each list's largest score: its
    # error stays at the float32 rounding of terms of size 1 (a few ulps of 1, 2**-22),
    # whatever the scores' size; PyTorch's grows with it (docs/parity.md).
    drift = script.gradient_drift([10.0, 1e4], seed=0)
    assert all(errors["jax"] <= 2**-22 for errors in drift.values())
    for bad in ("0", "x", "1e31"):
        with pytest.raises(SystemExit) as stop:
            script.main(["--scales", bad])
        assert stop.value.code == 2
    assert "--scales: expected" in capsys.readouterr().err
