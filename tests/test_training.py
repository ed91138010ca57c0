"""Trainers end to end: run directory, resume, compilation count, guard, export.

The full run and the export use MovieLens 100K; where the data is not the point (resume,
compilation count, the non-finite guard) small synthetic data keeps the tests quick.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jax_ltr import _train as jax_train
from ltr_common.loop import NonFiniteError, epoch_inputs
from ltr_train import run
from tests._small import SMALL, small_data

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name):
    spec = importlib.util.spec_from_file_location(f"scripts.{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def random_order(movielens):
    """Validation and test NDCG@10 of a random order, averaged over three draws."""
    results = load_script("baselines").evaluate_baselines(seeds=3)
    return {part: results[f"random/{part}"]["ndcg@10"] for part in ("validation", "test")}


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_one_epoch_run_writes_a_complete_run_directory(framework, tmp_path, capsys, random_order):
    run_dir = tmp_path / "run"
    code = load_script("train").main(
        [
            "--framework",
            framework,
            "--epochs",
            "1",
            "--batch_size",
            "256",
            "--run-dir",
            str(run_dir),
            "--no-progress",
            "--compilation_cache",
            "false",  # the on-disk cache is global JAX state: not for this test process
            "--length_bucketing",
            "false",  # batches of 256 random lists: one padded width, one compilation
        ]
    )
    assert code == 0
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "train.log", "checkpoint_latest", "checkpoint_best", "metrics.json"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["framework"], config["epochs"], config["batch_size"]) == (framework, 1, 256)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for part in ("validation", "test"):
        assert set(metrics[part]) == {"ndcg@5", "ndcg@10", "ndcg@20", "mrr", "map", "recall@10"}
        # One epoch already orders the held-out ratings better than chance.
        assert random_order[part] < metrics[part]["ndcg@10"] <= 1.0
    out = capsys.readouterr().out
    assert "best validation ndcg@10" in out and "test" in out
    log = (run_dir / "train.log").read_text()
    assert f"{framework} trainer on" in log and "validation" in log


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_resume_after_an_interrupt_ends_like_an_uninterrupted_run(framework, tmp_path):
    whole = run(framework, SMALL, tmp_path / "whole", data=small_data(), progress_bar=False)

    class Interrupted(Exception):
        pass

    def interrupt(progress):
        if progress.step == 5:  # mid-epoch (5 steps per epoch), two steps after a checkpoint
            raise Interrupted

    with pytest.raises(Interrupted):
        run(framework, SMALL, tmp_path / "split", data=small_data(), progress_bar=False, after_step=interrupt)
    resumed = run(framework, SMALL, tmp_path / "split", data=small_data(), resume=True, progress_bar=False)
    assert resumed["steps"] == whole["steps"] and resumed["best_step"] == whole["best_step"]
    assert resumed["validation"] == whole["validation"]
    assert resumed["test"] == whole["test"]


def test_the_trainers_step_compiles_once_per_batch_shape():
    config = dataclasses.replace(SMALL, length_bucketing=True)  # widths 8, 24 and 50 here
    ratings, split = small_data()
    trainer = jax_train.Trainer(config, ratings.num_users, ratings.num_items)
    shapes = []
    for epoch in range(2):
        for batch, pairs, tie_break in epoch_inputs(split.train, config, epoch=epoch):
            trainer.train_step(batch, pairs, tie_break)
            shapes.append(batch.item_ids.shape)
    # The trainer's own jitted step records each trace: one per distinct batch shape.
    assert sorted(trainer.traced_shapes) == sorted(set(shapes))
    assert 1 < len(set(shapes)) < len(shapes)


def test_a_trainer_leaves_global_jax_configuration_alone():
    before = jax.config.jax_compilation_cache_dir
    jax_train.Trainer(SMALL, 5, 7)
    assert jax.config.jax_compilation_cache_dir == before


def test_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    real_step = jax_train.Trainer.train_step
    calls = []

    def poisoned(self, batch, pairs, tie_break):
        metrics = real_step(self, batch, pairs, tie_break)
        calls.append(1)
        if len(calls) == 7:
            metrics = {**metrics, "loss_total": metrics["loss_total"] * np.nan}
        return metrics

    monkeypatch.setattr(jax_train.Trainer, "train_step", poisoned)
    with pytest.raises(NonFiniteError, match=r"step 7: non-finite loss_total=nan"):
        run("jax", SMALL, tmp_path, data=small_data(), progress_bar=False)
    # The checkpoint of step 6 (the last evaluation before the bad step) is the latest, and loads.
    ratings, _ = small_data()
    trainer = jax_train.Trainer(SMALL, ratings.num_users, ratings.num_items)
    assert trainer.restore(tmp_path / "checkpoint_latest")["step"] == 6


def test_export_embeddings_and_analyse_run(tmp_path, movielens):
    results = run("torch", dataclasses.replace(SMALL, epochs=1), tmp_path, progress_bar=False)  # MovieLens
    path = load_script("export_embeddings").export(tmp_path, tmp_path / "out")
    data = np.load(path)
    assert data["user_embeddings"].shape == (943, 16) and data["item_embeddings"].shape == (1682, 16)
    np.testing.assert_array_equal(data["user_raw_ids"], movielens.user_raw_ids)
    users = (tmp_path / "out" / "user_ids.csv").read_text().splitlines()
    assert users[0] == "index,raw_id" and users[1] == "0,1" and len(users) == 944

    rows = {
        part: {r["group"]: r for r in table}
        for part, table in load_script("analyse_run").analyse(tmp_path).items()
    }
    baselines = load_script("baselines").evaluate_baselines(seeds=1)
    for part in ("validation", "test"):
        everything = rows[part]["all lists"]
        assert everything["lists"] == 943
        assert everything["model"] == pytest.approx(results[part]["ndcg@10"], abs=1e-6)
        assert everything["item mean"] == pytest.approx(baselines[f"item_mean/{part}"]["ndcg@10"], abs=1e-6)
        by_user = (
            rows[part]["users with a training order"]["lists"]
            + rows[part]["users with < 2 training ratings"]["lists"]
        )
        assert by_user == 943


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_set_user_embeddings_replaces_every_user(framework):
    from ltr_train import make_backend

    trainer = make_backend(framework, SMALL, 5, 7)
    users, _ = trainer.embeddings()
    with pytest.raises(ValueError, match=r"users: expected shape \(5, 16\)"):
        trainer.set_user_embeddings(users[:4])
    same = np.broadcast_to(users[2], users.shape).copy()
    trainer.set_user_embeddings(same)
    np.testing.assert_array_equal(trainer.embeddings()[0], same)


def test_bad_option_is_refused_before_loading(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script("train").main(["--learning_rate", "-1"])
    assert exit_info.value.code == 2
    assert "--learning_rate: expected a number > 0" in capsys.readouterr().err


def test_resume_refuses_options_that_cannot_apply_and_takes_more_epochs(tmp_path, capsys):
    from ltr_common.files import write_json

    write_json(tmp_path / "config.json", {"framework": "torch", **SMALL.to_dict()})
    train = load_script("train")
    for extra, named in (
        (["--learning_rate", "0.1"], "--learning_rate"),
        (["--run-dir", "elsewhere"], "--run-dir"),
        (["--framework", "jax", "--batch_size", "4"], "--batch_size, --framework"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            train.parse_command_line(["--resume", str(tmp_path), *extra])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"{named} cannot apply to it (only --epochs may be given" in err, err
    framework, config, _ = train.parse_command_line(["--resume", str(tmp_path), "--epochs", "5"])
    assert framework == "torch" and config == dataclasses.replace(SMALL, epochs=5)
    with pytest.raises(SystemExit):
        train.parse_command_line(["--resume", str(tmp_path / "missing")])
    assert "--resume: " in capsys.readouterr().err


def test_export_embeddings_from_a_folder_that_is_no_run_is_one_line_and_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script("export_embeddings").main([str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(f"error: {tmp_path} is not a run directory (it has no config.json)")
    assert not any("Traceback" in line for line in err)
