"""README command (a)'s entry point, run in-process on the real data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train.py"


def load_script():
    spec = importlib.util.spec_from_file_location("train_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prints_split_statistics(capsys, movielens):
    assert load_script().main([]) == 0
    out = capsys.readouterr().out
    assert "100000 ratings, 943 users, 1682 items" in out
    assert "validation     943     9430" in out and "test           943     9430" in out
    assert "users with no training list (cold: validation/test only): 32" in out


def test_bad_option_is_refused_before_loading(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script().main(["--learning_rate", "-1"])
    assert exit_info.value.code == 2
    assert "--learning_rate: expected a number > 0" in capsys.readouterr().err
