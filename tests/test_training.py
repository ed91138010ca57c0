"""Trainers end to end: run directory, resume, compilation count, guard, export.

The full run and the export use MovieLens 100K; where the data is not the point (resume,
compilation count, the non-finite guard) small synthetic data keeps the tests quick.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from jax_ltr import _train as jax_train
from ltr_common import ConfigError
from ltr_common.config import SELECTION_METRIC
from ltr_common.loop import NonFiniteError
from ltr_common.tasks import RerankTask, make_task
from ltr_train import run
from tests._logs import logged
from tests._scripts import load_script
from tests._small import SMALL, small_data


@pytest.fixture(scope="module")
def random_order(movielens):
    """Validation and test selection metric of a random order, averaged over three draws."""
    results = load_script("baselines").evaluate_baselines(seeds=3, baselines=("random",))
    return {part: results[f"random/{part}"][SELECTION_METRIC] for part in ("validation", "test")}


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_one_epoch_run_writes_a_complete_run_directory(framework, tmp_path, capsys, random_order):
    run_dir = tmp_path / "run"
    code = load_script("train").main(
        [
            "--framework",
            framework,
            "--task",
            "rerank",
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
        assert random_order[part] < metrics[part][SELECTION_METRIC] <= 1.0
    out = capsys.readouterr().out
    assert f"best validation {SELECTION_METRIC}" in out and "test" in out
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
    assert whole["timed_from_step"] == 0 and 0 < resumed["timed_from_step"] <= 5  # its checkpoint's step
    assert resumed["validation"] == whole["validation"]
    assert resumed["test"] == whole["test"]


def test_a_batch_size_above_the_lists_trains_one_batch_of_them_all(tmp_path):
    # 300 training lists: asked for 100,000 rows, each batch used to be padded to them (and
    # its random draws made at that shape). It trains as a run asked for 300 does.
    huge = run("jax", dataclasses.replace(SMALL, batch_size=100_000), tmp_path / "huge", data=small_data())
    fitted = run("jax", dataclasses.replace(SMALL, batch_size=300), tmp_path / "fitted", data=small_data())
    assert json.loads((tmp_path / "huge" / "config.json").read_text())["batch_size"] == 100_000  # as asked
    log = (tmp_path / "huge" / "train.log").read_text()
    assert "--batch_size 100000: an epoch trains 300 lists, so each batch holds 300 rows" in log
    assert huge["steps"] == fitted["steps"] == SMALL.epochs
    assert (huge["validation"], huge["test"]) == (fitted["validation"], fitted["test"])


@pytest.mark.parametrize(
    ("framework", "devices", "model", "rows"),
    [
        ("jax", 7, "mlp", 301),  # 300 lists over 7 devices: 43 rows each
        ("torch", 7, "mlp", 300),  # one device, whatever --devices says
        ("jax", 1, "sequence", 300),  # the sequence model's lists: histories with a next item
    ],
)
def test_a_batch_size_of_at_least_the_lists_becomes_them_rounded_to_the_devices(
    framework, devices, model, rows
):
    from ltr_train import fit_batch_size

    split = small_data()[1]
    config = dataclasses.replace(SMALL, devices=devices, model=model, loss="listmle")
    for asked in (300, rows, 10**6):
        fitted, task = fit_batch_size(framework, dataclasses.replace(config, batch_size=asked), split)
        assert task.training_lists() == 300 and task.steps_per_epoch() == 1
        assert fitted == dataclasses.replace(config, batch_size=rows)
    two_batches = dataclasses.replace(config, batch_size=299)  # kept as asked
    assert fit_batch_size(framework, two_batches, split)[0] == two_batches


def test_the_trainers_step_compiles_once_per_batch_shape():
    config = dataclasses.replace(SMALL, length_bucketing=True)  # widths 8, 24 and 50: all compiled at 64
    ratings, split = small_data()
    trainer = jax_train.Trainer(config, ratings.num_users, ratings.num_items)
    shapes = []
    for epoch in range(2):
        for batch, pairs in RerankTask(config, split).epoch_inputs(epoch=epoch):
            trainer.train_step(batch, pairs)
            shapes.append(batch.item_ids.shape)
    # The trainer's own jitted step records each trace: one per compiled width (narrow
    # batches padded up, jax_train.compiled_width), never one per step.
    compiled = {(size, jax_train.compiled_width(width)) for size, width in shapes}
    assert sorted(trainer.traced_shapes) == sorted(compiled)
    assert len(compiled) < len(set(shapes)) < len(shapes)


def test_a_step_whose_scores_span_past_one_shift_is_run_again_with_the_full_step(monkeypatch):
    # ListMLE's steps run compiled without the wide-span fallback; a step whose scores do not
    # fit one shift is held back, with every step after it, and run again with the full step
    # when the trainer looks (here after two steps, SETTLE_EVERY). Against a trainer that runs
    # the full step throughout, from the same state, the steps are the same program on the
    # same inputs: equal to the bit.
    monkeypatch.setattr(jax_train, "SETTLE_EVERY", 2)
    ratings, split = small_data()
    inputs = list(RerankTask(SMALL, split).epoch_inputs(epoch=0))[:4]
    ours = jax_train.Trainer(SMALL, ratings.num_users, ratings.num_items)
    full = jax_train.Trainer(SMALL, ratings.num_users, ratings.num_items, one_shift=False)
    first = [trainer.metrics_to_host([trainer.train_step(*inputs[0])])[0] for trainer in (ours, full)]
    assert ours.replayed_steps == 0 and full.traced_shapes == [(64, 64)]
    # The same operations, maybe fused otherwise: float32 sums of at most B * L = 4,096 terms
    # each, grouped otherwise, differ by at most 2 * 4,096 * eps of the sum of their sizes.
    bound = 2 * 4096 * float(np.finfo(np.float32).eps)
    for key, value in first[1].items():
        assert first[0][key] == pytest.approx(value, rel=bound), key

    # Scores 300 times larger span far more than one shift takes (43): held back, run again.
    start = jax.device_get(full.state)
    params = jax.tree.map(lambda x: np.asarray(x) * 300.0, start.params)
    for trainer in (ours, full):
        trainer.state = trainer.state.replace(
            step=start.step, params=params, opt_state=start.opt_state, dropout_key=start.dropout_key
        )
    ours_steps = [ours.train_step(*step) for step in inputs[1:]]
    assert ours.replayed_steps == 2  # the first two, when the second was run; the third is full
    full_steps = [full.train_step(*step) for step in inputs[1:]]
    assert ours.metrics_to_host(ours_steps) == full.metrics_to_host(full_steps)
    for mine, theirs in zip(jax.tree.leaves(ours.state), jax.tree.leaves(full.state), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert ours.replayed_steps == 2 and len(ours.traced_shapes) == 2  # one shift's, then the full


def test_the_steps_after_a_held_one_are_held_and_run_again_from_it(monkeypatch, tmp_path):
    # An item no batch holds (the catalog's last), scoring far above the rest, put in the
    # middle batch only: that step alone does not fit one shift. The one after it is held
    # too, and both run again from the state after the first, as a trainer that ran the
    # first with one shift and the rest with the full step computes them: equal to the bit.
    ratings, split = small_data()
    inputs = list(RerankTask(SMALL, split).epoch_inputs(epoch=0))[:3]
    extra = ratings.num_items
    batch, pairs = inputs[1]
    item_ids = batch.item_ids.copy()
    item_ids[0, 0] = extra
    assert batch.mask[0, 0]
    inputs[1] = (batch._replace(item_ids=item_ids), pairs)
    trainers = [jax_train.Trainer(SMALL, ratings.num_users, extra + 1) for _ in range(2)]
    for trainer in trainers:
        params = jax.tree.map(np.array, jax.device_get(trainer.state.params))
        params["item_embedding"]["embedding"][extra] *= 1e4
        trainer.state = trainer.state.replace(params=params)
    ours, oracle = trainers
    ours_steps = [ours.train_step(*step) for step in inputs]
    oracle_steps = [oracle.train_step(*inputs[0])]
    oracle.metrics_to_host(oracle_steps)
    assert oracle.replayed_steps == 0  # the first step fits
    monkeypatch.setattr(oracle, "_one_shift", False)
    oracle_steps += [oracle.train_step(*step) for step in inputs[1:]]
    # Reading the first step's metrics looks at its flag alone: the later two stay unsettled.
    assert ours.metrics_to_host(ours_steps[:1]) == oracle.metrics_to_host(oracle_steps[:1])
    assert ours.replayed_steps == 0 and len(ours._unsettled) == 2
    # Asked in any order, the steps are settled through the newest of them.
    assert ours.metrics_to_host(ours_steps[::-1]) == oracle.metrics_to_host(oracle_steps[::-1])
    assert ours.replayed_steps == 2
    for mine, theirs in zip(jax.tree.leaves(ours.state), jax.tree.leaves(oracle.state), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    # Its checkpoint says so: a run resumed from it compiles the full step, as this one runs.
    ours.save([tmp_path / "checkpoint"], {"step": 3})
    ours.finish_saves()
    resumed = jax_train.Trainer(SMALL, ratings.num_users, extra + 1)
    resumed.restore(tmp_path / "checkpoint")
    assert not resumed._one_shift and oracle.state.step == resumed.state.step == 3
    # A checkpoint written before the flag existed: the state without it, one shift kept.
    import flax.serialization

    from ltr_common.files import read_checkpoint_bytes, write_checkpoint_bytes

    raw = flax.serialization.msgpack_restore(read_checkpoint_bytes(tmp_path / "checkpoint"))
    del raw["full_step"]
    write_checkpoint_bytes(tmp_path / "older", flax.serialization.msgpack_serialize(raw))
    older = jax_train.Trainer(SMALL, ratings.num_users, extra + 1)
    assert older.restore(tmp_path / "older") == {"step": 3} and older._one_shift
    for mine, theirs in zip(jax.tree.leaves(older.state), jax.tree.leaves(ours.state), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_a_step_with_nan_scores_reports_nan_with_or_without_one_shift():
    ratings, split = small_data()
    batch, pairs = next(iter(RerankTask(SMALL, split).epoch_inputs(epoch=0)))
    trainer = jax_train.Trainer(SMALL, ratings.num_users, ratings.num_items)
    state = jax.device_get(trainer.state)
    poisoned = jax.tree.map(lambda x: np.full_like(x, np.nan) if x.ndim == 1 else np.asarray(x), state.params)
    trainer.state = state.replace(params=poisoned)
    (metrics,) = trainer.metrics_to_host([trainer.train_step(batch, pairs)])
    # Run again or not (a NaN may pass the one shift's check), the loss is NaN: the loop's guard stops.
    assert all(np.isnan(value) for value in metrics.values())


@pytest.fixture
def no_compilation_cache():
    """JAX's cache folder unset for the test (the test run sets one), then put back, with the
    shortest compilation it keeps."""
    before = jax.config.jax_compilation_cache_dir
    shortest = jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_compilation_cache_dir", None)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)  # JAX's default
    yield
    jax.config.update("jax_compilation_cache_dir", before)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", shortest)


def test_a_trainer_leaves_global_jax_configuration_alone(no_compilation_cache):
    jax_train.Trainer(dataclasses.replace(SMALL, compilation_cache=True), 5, 7)
    assert jax.config.jax_compilation_cache_dir is None


def test_configure_turns_on_the_compilation_cache_under_the_cache_folder(
    no_compilation_cache, tmp_path, monkeypatch
):
    from ltr_train import configure
    from ltr_train.backends import CACHED_COMPILE_S

    monkeypatch.delenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", raising=False)  # conftest.py's

    configure("jax", dataclasses.replace(SMALL, compilation_cache=False, cache_dir=str(tmp_path)))
    assert jax.config.jax_compilation_cache_dir is None
    configure("torch", dataclasses.replace(SMALL, cache_dir=str(tmp_path)))
    assert jax.config.jax_compilation_cache_dir is None
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 1.0  # left alone so far
    configure("jax", dataclasses.replace(SMALL, cache_dir=str(tmp_path)))
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla")
    # the evaluation's metrics (about 0.5 s to compile) are kept too
    assert jax.config.jax_persistent_cache_min_compile_time_secs == CACHED_COMPILE_S < 0.5
    configure("jax", dataclasses.replace(SMALL, cache_dir=str(tmp_path / "other")))  # one set stays
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla")


def test_configure_keeps_the_users_shortest_cached_compilation(no_compilation_cache, tmp_path, monkeypatch):
    from ltr_train import configure

    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "2.5")
    configure("jax", dataclasses.replace(SMALL, cache_dir=str(tmp_path)))
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla")
    # left as the process started (JAX reads the variable when it is imported)
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 1.0


def test_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    real_step = jax_train.Trainer.train_step
    calls = []

    def poisoned(self, batch, pairs):
        metrics = real_step(self, batch, pairs)
        calls.append(1)
        if len(calls) == 7:
            metrics = {**metrics, "loss_total": metrics["loss_total"] * np.nan}
        return metrics

    monkeypatch.setattr(jax_train.Trainer, "train_step", poisoned)
    latest = tmp_path / "checkpoint_latest"
    message = f"step 7: non-finite loss_total=nan; the last good checkpoint stays at {latest}"
    with pytest.raises(NonFiniteError, match=re.escape(message)):
        run("jax", SMALL, tmp_path, data=small_data(), progress_bar=False)
    # The checkpoint of step 6 (the last evaluation before the bad step) is the latest, and loads.
    ratings, _ = small_data()
    trainer = jax_train.Trainer(SMALL, ratings.num_users, ratings.num_items)
    assert trainer.restore(tmp_path / "checkpoint_latest")["step"] == 6


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_a_model_that_diverges_at_an_evaluation_is_not_kept_as_the_best(framework, tmp_path):
    """A step whose update makes the model's scores NaN or infinite (its loss was finite) ends
    the run at that evaluation: its metrics, NaN ranked last, would read as a poor ranking and
    could be kept as the best (this run's first)."""
    config = dataclasses.replace(SMALL, learning_rate=1e30, grad_clip_norm=1e30, eval_every=1)
    message = r"step 1: validation: the model scores 300 of 300 lists NaN or infinite \(it diverged\)"
    with pytest.raises(NonFiniteError, match=message):
        run(framework, config, tmp_path, data=small_data(), progress_bar=False)
    assert not (tmp_path / "checkpoint_best").exists()


def test_every_scorer_that_scores_nan_is_refused_by_both_tasks():
    """Rerank and retrieve alike, for the baselines' scorers too: a NaN score ends the
    evaluation, naming how many lists it touched."""
    import jax_ltr
    from ltr_common import baselines

    ratings, split = small_data()
    for config in (SMALL, dataclasses.replace(SMALL, task="retrieve", model="dot", negatives=20)):
        scorer = baselines.ScoreScorer(
            lambda users, items: np.where(users == 0, np.nan, items * 0.0).astype(np.float32),
            jax_ltr,
            top_k=config.top_k,
            num_items=ratings.num_items,
        )
        lists = "users" if config.task == "retrieve" else "lists"
        with pytest.raises(NonFiniteError, match=f"the model scores 1 of \\d+ {lists} NaN or infinite"):
            make_task(config, split).evaluate(scorer, "test")
    # The count is the whole evaluation's, however many batches it takes.
    from ltr_common import per_list_metrics

    every_other = baselines.ScoreScorer(
        lambda users, items: np.where(users % 2 == 0, np.nan, items * 0.0).astype(np.float32),
        jax_ltr,
        top_k=SMALL.top_k,
        num_items=ratings.num_items,
    )
    with pytest.raises(NonFiniteError, match="the model scores 150 of 300 lists NaN or infinite"):
        per_list_metrics(every_other.batch_metrics, split.test, batch_size=8)


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
    for part in ("validation", "test"):
        everything = rows[part]["all lists"]
        assert everything["lists"] == 943
        assert everything["model"] == pytest.approx(results[part]["ndcg@10"], abs=1e-6)
        # The same shrunk item mean, chosen and fit the same way, as the run's own table has.
        item_mean = results["baselines"]["item_mean"][part]["ndcg@10"]
        assert everything["item mean"] == pytest.approx(item_mean, abs=1e-6)
        by_user = (
            rows[part]["users with a training order"]["lists"]
            + rows[part]["users with < 2 training ratings"]["lists"]
        )
        assert by_user == 943
    # --metric offers the per-list metrics, not the evaluation's own flag of NaN scores
    with pytest.raises(ConfigError) as refused:
        load_script("analyse_run").analyse(tmp_path, "unscored")
    assert str(refused.value) == (
        "--metric: expected one of ndcg@5, ndcg@10, ndcg@20, mrr, map, recall@10, got 'unscored'"
    )


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_set_user_embeddings_replaces_every_user(framework):
    from ltr_train import make_backend

    trainer = make_backend(framework, SMALL, 5, 7)
    users = trainer.weights()["user_embedding"]
    with pytest.raises(ValueError, match=r"users: expected shape \(5, 16\)"):
        trainer.set_user_embeddings(users[:4])
    same = np.broadcast_to(users[2], users.shape).copy()
    trainer.set_user_embeddings(same)
    np.testing.assert_array_equal(trainer.weights()["user_embedding"], same)


def test_bad_option_is_refused_before_loading(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script("train").main(["--learning_rate", "-1"])
    assert exit_info.value.code == 2
    assert "--learning_rate: expected a finite number > 0" in capsys.readouterr().err


def test_resume_refuses_options_that_cannot_apply_and_takes_more_epochs(tmp_path, capsys):
    from ltr_common.files import write_json

    write_json(tmp_path / "config.json", {"framework": "torch", **SMALL.to_dict()})
    train = load_script("train")

    def refused(argv, message):
        with pytest.raises(SystemExit) as exit_info:
            train.parse_command_line(["--resume", str(tmp_path), *argv])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err, err

    for extra, named in (
        (["--learning_rate", "0.1"], "--learning_rate"),
        (["--run-dir", "elsewhere"], "--run-dir"),
        (["--framework", "jax", "--batch_size", "4"], "--batch_size, --framework"),
    ):
        refused(extra, f"{named} cannot apply to it (only --epochs, --data, --data_dir")
    refused(["--epochs", "1"], "--epochs: 1 is fewer than the 2")
    argv = ["--resume", str(tmp_path), "--epochs", "5", "--cache_dir", "/elsewhere"]
    framework, config, _ = train.parse_command_line(argv)
    assert framework == "torch" and config == dataclasses.replace(SMALL, epochs=5, cache_dir="/elsewhere")
    with pytest.raises(SystemExit):
        train.parse_command_line(["--resume", str(tmp_path / "missing")])
    assert "--resume: " in capsys.readouterr().err


def test_a_run_config_that_is_wrong_names_the_file(tmp_path, capsys):
    from ltr_common.files import write_json

    train = load_script("train")
    for data, message in (
        ({"framework": "tensorflow"}, "config.json: framework must be one of jax, torch, found 'tensorflow'"),
        ({"epochs": 0}, "config.json: --epochs: expected an integer >= 1, got 0"),
        ({"bogus": 1}, "config.json has unknown option(s) bogus"),
    ):
        write_json(tmp_path / "config.json", {**SMALL.to_dict(), **data})
        with pytest.raises(SystemExit):
            train.parse_command_line(["--resume", str(tmp_path)])
        error = capsys.readouterr().err.strip().splitlines()[-1]  # after the usage lines
        assert message in error and "--config" not in error, error


def test_export_embeddings_from_a_folder_that_is_no_run_is_one_line_and_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script("export_embeddings").main([str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(f"error: {tmp_path} is not a run directory (it has no config.json)")
    assert not any("Traceback" in line for line in err)


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_a_retrieval_run_beside_its_baselines(framework, tmp_path):
    config = dataclasses.replace(SMALL, task="retrieve", model="dot", negatives=20, epochs=2)
    results = run(framework, config, tmp_path, data=small_data(), progress_bar=False)
    ratings, _ = small_data()
    for part in ("validation", "test"):
        assert {"ndcg@10", "recall@10", "hr@10", "liked/ndcg@10"} <= set(results[part])
        assert results["lists"][part]["lists"] + results["lists"][part]["left out"] == ratings.num_users
        for name in ("popularity", "ease", "item_knn"):
            mean, se, n = results["paired"][name][part][SELECTION_METRIC]
            model, baseline = (
                results[part][SELECTION_METRIC],
                results["baselines"][name][part][SELECTION_METRIC],
            )
            assert (
                mean == pytest.approx(model - baseline, abs=1e-9)
                and se > 0
                and n == results["lists"][part]["lists"]
            )
    # A history-reading scorer's second test column: only the training ratings shown.
    assert set(results["test, training history only"]) == set(results["test"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["task"] == "retrieve" and saved["paired"] == json.loads(json.dumps(results["paired"]))


def test_a_refit_trains_on_validation_too_and_reports_test_only(tmp_path):
    config = dataclasses.replace(SMALL, refit=True)
    ratings, _ = small_data()
    from ltr_common.data import split_ratings

    split = split_ratings(ratings, config)
    assert len(split.validation) == 0
    results = run("jax", config, tmp_path, data=(ratings, split), progress_bar=False)
    assert "validation" not in results and set(results["lists"]) == {"test"}
    assert results["best_step"] == results["steps"]  # nothing to select on: the last weights
    plain = split_ratings(ratings, dataclasses.replace(config, refit=False))
    assert split.train.lengths.sum() == plain.train.lengths.sum() + plain.validation.lengths.sum()


@pytest.mark.slow
def test_recommend_export_and_task_checks_on_a_movielens_retrieval_run(
    tmp_path, capsys, monkeypatch, movielens
):
    # The run's table beside popularity only: EASE and item-kNN, fit and grid-searched on the
    # whole catalog, would take most of the test's time, and what is checked here is what the
    # run leaves for serving (test_a_retrieval_run_beside_its_baselines checks the table).
    monkeypatch.setitem(sys.modules["ltr_train.run"].RUN_BASELINES, "retrieve", ("popularity",))
    config = [
        "--framework",
        "torch",
        "--task",
        "retrieve",
        "--model",
        "dot",
        "--negatives",
        "20",
        "--embedding_dim",
        "8",
        "--epochs",
        "1",
        "--batch_size",
        "128",
        "--no-progress",
    ]
    assert load_script("train").main([*config, "--run-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    recommend = load_script("recommend")
    assert recommend.main([str(tmp_path), "--user", "1", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("top 3 unrated items, by score:") and "\nrated highest (" in out
    recommended, rated = recommend.recommend(tmp_path, 1, 3)
    assert len(recommended) == 3 and not {raw for raw, _ in recommended} & {raw for raw, _ in rated}
    assert [r for _, r in rated] == sorted((r for _, r in rated), reverse=True) and len(rated) > 3
    # Every rating of the data by default (export_embeddings.py's history); --history training:
    # those before the validation lists, whose held-out items may be recommended again.
    _, trained = recommend.recommend(tmp_path, 1, 3, history="training")
    assert set(trained) < set(rated) and len(rated) == len(trained) + 20  # 10 validation, 10 test
    assert recommend.main([str(tmp_path), "--user", " 1 ", "--k", "3", "--history", "training"]) == 0
    assert "\nrated highest in training (" in capsys.readouterr().out
    # several users in one call, each as the one-user call lists them; every user to a CSV,
    # the cold ones (no training ratings) marked
    assert recommend.main([str(tmp_path), "--user", "1", "2", "3", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("user ")] == [
        f"user {u}: top 3 unrated items, by score:" for u in (1, 2, 3)
    ]
    recs = tmp_path / "recs.csv"
    assert recommend.main([str(tmp_path), "--all", "--out", str(recs), "--k", "3"]) == 0
    assert capsys.readouterr().out == f"wrote {943 * 3} items for 943 users to {recs}\n"
    table = pd.read_csv(recs)
    assert list(table.columns) == ["user", "rank", "item", "score", "cold", "title"]
    assert len(table) == 943 * 3 and table.user.nunique() == 943
    first = table[table.user == 1]
    assert first.item.tolist() == [raw for raw, _ in recommended] and not first.cold.any()
    np.testing.assert_allclose(first.score, [score for _, score in recommended], rtol=1e-5)
    model = recommend.Recommender(tmp_path)
    cold = set(model.ratings.user_raw_ids[model.cold(np.arange(943))].tolist())
    assert cold and set(table.user[table.cold]) == cold  # users with validation/test ratings only
    capsys.readouterr()
    assert recommend.main([str(tmp_path), "--user", str(min(cold)), "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cold user (no ratings in training") and "\nrated highest (20 ratings" in out
    assert recommend.main([str(tmp_path), "--user", str(min(cold)), "--k", "2", "--history", "training"]) == 0
    assert "\nno ratings in training" in capsys.readouterr().out
    # A diverged model (NaN or infinite scores) is refused, naming the first such user.
    monkeypatch.setattr(
        type(recommend.Recommender(tmp_path).backend),
        "catalog_scores",
        lambda self, users, history=None: np.where(
            np.asarray(users)[:, None] == 0, np.nan, np.zeros((len(users), 1682), np.float32)
        ),
    )
    assert recommend.main([str(tmp_path), "--user", "2", "1", "--k", "2"]) == 1
    assert (
        "the model scores items of user 1 as NaN or infinite, so it cannot rank them"
        in capsys.readouterr().err
    )
    monkeypatch.undo()
    # A k past the catalog: every unrated item, said so, with no array of k entries made
    assert recommend.main([str(tmp_path), "--user", "1", "--k", str(10**11)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"all {1682 - len(rated)} unrated items, by score:"
    with pytest.raises(SystemExit):  # --all prints nothing: it needs --out
        recommend.main([str(tmp_path), "--all"])
    assert "--all: give --out FILE.csv" in capsys.readouterr().err
    path = load_script("export_embeddings").export(tmp_path, tmp_path / "out")
    data = np.load(path)
    from ltr_train import load_run_config, make_backend

    framework, run_config = load_run_config(tmp_path)
    backend = make_backend(framework, run_config, 943, 1682)
    backend.restore(tmp_path / "checkpoint_best")
    scores = backend.catalog_scores(np.arange(5, dtype=np.int32))
    user_bias = backend.weights()["user_bias"][:5, None]
    np.testing.assert_allclose(
        data["user_vectors"][:5] @ data["item_vectors"].T + user_bias, scores, rtol=1e-5, atol=1e-5
    )
    with pytest.raises(SystemExit) as exit_info:
        load_script("baselines").main(
            ["--task", "rerank", "--run", f"dot={tmp_path}", "--baselines", "popularity"]
        )
    assert exit_info.value.code == 2
    assert "is a --task retrieve run; this comparison is --task rerank" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        load_script("analyse_run").main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "is a --task retrieve run; this analysis is of --task rerank runs" in capsys.readouterr().err


def _events(run_dir: Path) -> list:
    """The events of a run's TensorBoard file: TFRecords (length, its CRC, data, its CRC)."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    (path,) = run_dir.glob("events.out.tfevents*")
    data, events, at = path.read_bytes(), [], 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at : at + 8])
        events.append(Event.FromString(data[at + 12 : at + 12 + length]))
        at += 12 + length + 4
    return events


def test_a_runs_tensorboard_events_hold_every_steps_scalars(tmp_path):
    config = dataclasses.replace(SMALL, epochs=1, eval_every=2)
    run("jax", config, tmp_path, data=small_data(), progress_bar=False)
    by_step: dict[int, set[str]] = {}
    for event in _events(tmp_path):
        for value in event.summary.value:
            by_step.setdefault(event.step, set()).add(value.tag)
    steps = make_task(config, small_data()[1]).steps_per_epoch()
    assert sorted(by_step) == list(range(1, steps + 1))
    for step, tags in by_step.items():
        assert {"train/loss_total", "train/grad_norm", "train/learning_rate"} <= tags, step
        assert ("val/ndcg_10" in tags) == (step % 2 == 0 or step == steps), step
    assert "train/lists_per_second" in by_step[steps]


def test_rerank_metrics_count_as_relevant_what_relevance_threshold_says(capsys):
    """Rerank's MRR, MAP and recall read --relevance_threshold (4 by default), in both trainers
    and the baselines alike: at 1 every rated item is relevant, so each is 1 on every list;
    a threshold no validation rating reaches is warned of, not left to give silent zeros."""
    import jax_ltr
    from ltr_common import baselines
    from ltr_common.data import split_ratings
    from ltr_common.tasks import make_task
    from ltr_train import make_backend

    ratings, split = small_data()
    for threshold, expected in ((1.0, 1.0), (6.0, 0.0)):
        config = dataclasses.replace(SMALL, relevance_threshold=threshold)
        with logged() as warned:
            task = make_task(config, split)
        assert bool(warned) == (threshold == 6.0)
        assert not warned or warned[0].startswith("--relevance_threshold 6: no validation list holds")
        scorers = [make_backend(f, config, ratings.num_users, ratings.num_items) for f in ("jax", "torch")]
        scorers.append(
            baselines.ScoreScorer(
                lambda users, items: -items.astype(np.float32),
                jax_ltr,
                top_k=config.top_k,
                num_items=ratings.num_items,
                relevance_threshold=threshold,
            )
        )
        for scorer in scorers:
            metrics = task.evaluate(scorer, "validation")
            assert metrics["mrr"] == metrics["map"] == metrics["recall@10"] == expected, metrics
    # The sequence model's evaluation step (JAX compiles its own) reads it too.
    sequence = dataclasses.replace(
        SMALL, model="sequence", loss="listmle", relevance_threshold=1.0, embedding_dim=8, history_length=16
    )
    task = make_task(sequence, split)
    for framework in ("jax", "torch"):
        metrics = task.evaluate(
            make_backend(framework, sequence, ratings.num_users, ratings.num_items), "validation"
        )
        assert metrics["mrr"] == metrics["map"] == metrics["recall@10"] == 1.0, (framework, metrics)
    # Lists of one item have no order: every metric is the same for any model, warned of; a
    # refit (no validation lists) is warned of its test lists.
    one = dataclasses.replace(SMALL, validation_size=1, test_size=1)
    with logged() as warned:
        make_task(one, split_ratings(ratings, one))
    assert warned == [
        "every validation list holds one item (--validation_size 1): there is no order to rank, so every "
        "ranking metric is the same for any model (NDCG 1; MRR, MAP and recall 1 or 0 by the item's rating)\n"
    ]
    refit = dataclasses.replace(SMALL, refit=True, relevance_threshold=6.0)
    with logged() as warned:
        make_task(refit, split_ratings(ratings, refit))
    assert len(warned) == 1 and warned[0].startswith("--relevance_threshold 6: no test list holds")
