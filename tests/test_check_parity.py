"""scripts/check_parity.py: the table, the JSON, and a non-zero exit when a row fails."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

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
