"""What a user can type is answered before any work, in one line on stderr: exit status 2 for a
bad flag, option or configuration value, 1 for data, files and checkpoints; never a traceback,
a hang or a silent wrong number.

Where a script would otherwise go on to train, ``no_training`` makes a training run fail the
test at once, so that a refusal that comes too late costs no time.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys

import numpy as np
import pytest

from ltr_common import ConfigError, TrainConfig
from ltr_common.data import split_ratings
from ltr_common.files import CheckpointError, write_json
from ltr_common.tasks import make_task
from ltr_train import make_backend, run
from ltr_train.runs import run_config_data
from tests._logs import logged
from tests._scripts import load_script
from tests._small import SMALL, small_data

# The flags every train.py call here adds: no progress bar, no global compilation cache.
QUIET = ["--no-progress", "--compilation_cache", "false"]


def error_line(capsys) -> str:
    """The last line on stderr, after checking that no traceback came before it."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


@pytest.fixture
def no_training(monkeypatch):
    def train(*args, **kwargs):
        raise AssertionError("training started; the input should have been refused before")

    monkeypatch.setattr(sys.modules["ltr_train.run"], "train", train)


def exit_code(main, argv) -> int:
    """``main(argv)``'s exit status, whether it returns it or exits with it."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--top_k", "5"], "--top_k: expected one or more integers >= 1, 10 among them"),
        (["--seed", "-1"], "--seed: expected an integer in [0, 2**63), got -1"),
        (["--max_list_size", str(10**20)], "--max_list_size: expected an integer below 2**31"),
        (["--config", "/"], "--config: / cannot be read (Is a directory)"),
        (["--cache_dir", __file__], f"--cache_dir: expected a folder, not a file, got {__file__!r}"),
        (["--process_id", "5"], "--process_id: give --coordinator_address, --num_processes too"),
        (
            ["--num_processes", "2", "--coordinator_address", "localhost:1", "--process_id", "2"],
            "--process_id: need 0 <= process_id < --num_processes 2, got 2",
        ),
        (["--framework", "torch", "--num_processes", "1"], "--num_processes: multi-host runs are JAX's"),
        (
            ["--framework", "torch", "--devices", "2"],
            "--devices: 2 is JAX's data parallelism; PyTorch trains",
        ),
        (["--top_k", "10", str(10**20)], "--top_k: expected one or more integers >= 1, 10 among them"),
    ],
)
def test_train_refuses_an_impossible_option_before_loading(argv, message, capsys, no_training, tmp_path):
    code = exit_code(load_script("train").main, [*argv, *QUIET, "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--negatives", "5000"],
            "--negatives: 5000 sampled items per list, but the user who rated the most (717 items by the "
            "end of training) has only 965 of the 1682 items left unrated; use at most 965",
        ),
        (["--devices", "3"], "--devices: asked for 3, JAX sees 1"),
        (
            ["--task", "rerank", "--test_size", "5000"],
            "--test_size 5000 and --validation_size 10 leave no user a training list",
        ),
    ],
)
def test_train_refuses_options_the_data_or_machine_cannot_meet(
    argv, message, capsys, no_training, tmp_path, movielens
):
    run_dir = tmp_path / "run"
    assert exit_code(load_script("train").main, [*argv, *QUIET, "--run-dir", str(run_dir)]) == 2
    assert message in error_line(capsys)
    assert not run_dir.exists()  # nothing written: the same --run-dir can be used again


def test_a_model_too_large_for_the_host_is_one_line_and_status_1(tmp_path, capsys, monkeypatch):
    # NumPy's own error, as an embedding table of 10**9 columns raised it (not allocated here:
    # a host that overcommits memory would start filling it).
    message = ("Unable to allocate 7.03 TiB for an array with shape (943, 1000000000) and data type float64",)

    def too_large(*args, **kwargs):
        raise MemoryError(*message)

    monkeypatch.setattr(sys.modules["ltr_train.run"], "make_backend", too_large)
    argv = ["--model", "dot", *QUIET, "--run-dir", str(tmp_path / "run")]
    assert exit_code(load_script("train").main, argv) == 1
    assert error_line(capsys).endswith(f"error: {message[0]}")
    assert not (tmp_path / "run").exists()
    message = ()  # Python's own MemoryError says nothing: its name stands in
    assert exit_code(load_script("train").main, argv) == 1
    assert error_line(capsys).endswith("error: MemoryError")


def test_a_task_with_nothing_to_train_on_is_refused(movielens):
    config = dataclasses.replace(SMALL, test_size=5000)
    for task in ("rerank", "retrieve"):
        config = dataclasses.replace(config, task=task, model="dot", negatives=20)
        with pytest.raises(ConfigError) as err:
            make_task(config, split_ratings(movielens, config))
        assert str(err.value) == (
            "--test_size 5000 and --validation_size 10 leave no user a training list: every user's "
            "ratings are all held out (the most any user has is 737); lower them"
        )
    config = dataclasses.replace(config, refit=True)
    with pytest.raises(ConfigError, match=r"^--test_size 5000 leaves no user a training list"):
        make_task(config, split_ratings(movielens, config))


def test_a_config_file_value_of_the_wrong_type_is_one_line_naming_file_and_option(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"learning_rate": "fast"}))
    assert exit_code(load_script("train").main, ["--config", str(path), *QUIET]) == 2
    assert error_line(capsys).endswith(
        f"error: --config: {path}: --learning_rate: expected a number, got 'fast'"
    )
    write_json(tmp_path / "config.json", {"framework": "jax", **SMALL.to_dict(), "length_bucketing": "no"})
    assert exit_code(load_script("train").main, ["--resume", str(tmp_path)]) == 2
    assert error_line(capsys).endswith(
        f"error: --resume: {tmp_path / 'config.json'}: --length_bucketing: expected true or false, got 'no'"
    )
    # A file, or a run's config.json, that is not UTF-8 text
    path.write_bytes(b"\xff\xfe{}")
    assert exit_code(load_script("train").main, ["--config", str(path), *QUIET]) == 2
    assert f"error: --config: {path} is not UTF-8 text (" in error_line(capsys)
    (tmp_path / "config.json").write_bytes(b"\xff")
    assert exit_code(load_script("train").main, ["--resume", str(tmp_path)]) == 2
    assert f"error: --resume: {tmp_path / 'config.json'} is not UTF-8 text" in error_line(capsys)


def test_a_runs_config_json_serves_as_a_config_file(tmp_path, capsys):
    path = tmp_path / "config.json"
    write_json(path, {"framework": "torch", **SMALL.to_dict(), "epochs": 3})
    train = load_script("train")
    framework, config, _ = train.parse_command_line(["--config", str(path)])
    assert (framework, config) == ("torch", dataclasses.replace(SMALL, epochs=3))
    framework, _, _ = train.parse_command_line(["--config", str(path), "--framework", "jax"])
    assert framework == "jax"  # a flag given wins over the file
    write_json(path, {"framework": "mxnet"})
    assert exit_code(train.main, ["--config", str(path), *QUIET]) == 2
    assert error_line(capsys).endswith(f"--config: {path}: framework must be jax or torch, found 'mxnet'")


def _other_run(run_dir, framework="torch", **changes):
    """A run directory holding another run's config and checkpoint."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", {"framework": framework, **SMALL.to_dict(), **changes})
    (run_dir / "checkpoint_latest").write_bytes(b"another run's checkpoint")
    return {p.name: p.read_bytes() for p in run_dir.iterdir()}


def test_a_new_run_refuses_a_folder_that_holds_a_run(tmp_path, capsys, no_training):
    before = _other_run(tmp_path)
    with pytest.raises(ConfigError) as err:
        run("jax", SMALL, tmp_path, data=small_data(), progress_bar=False)
    assert str(err.value) == (
        f"--run-dir: {tmp_path} holds a run already (config.json, checkpoint_latest); choose "
        f"another folder, or continue that run with --resume {tmp_path}"
    )
    argv = ["--framework", "jax", "--run-dir", str(tmp_path), *QUIET]
    assert exit_code(load_script("train").main, argv) == 2
    assert "--run-dir: " in error_line(capsys)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # A run's checkpoints are refused even when its config is this run's.
    write_json(tmp_path / "config.json", {"framework": "jax", **SMALL.to_dict()})
    with pytest.raises(ConfigError, match=r"holds a run already \(checkpoint_latest\)"):
        run("jax", SMALL, tmp_path, data=small_data(), progress_bar=False)
    # A folder with other files is used, and so is one where only this run's config.json was
    # written (as the other processes of a multi-host run find it).
    for files in ({"notes.txt": "mine"}, {"config.json": (tmp_path / "config.json").read_text()}):
        folder = tmp_path / f"other-{len(files)}-{next(iter(files))}"
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
        with pytest.raises(AssertionError, match="training started"):
            run("jax", SMALL, folder, data=small_data(), progress_bar=False)


def test_a_pytorch_run_resumed_with_several_devices_is_refused(tmp_path, capsys, no_training):
    before = _other_run(tmp_path / "run", framework="torch")
    argv = ["--resume", str(tmp_path / "run"), "--devices", "2"]
    assert exit_code(load_script("train").main, argv) == 2
    assert "--devices: 2 is JAX's data parallelism; PyTorch trains on one device" in error_line(capsys)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before


def _records(run_dir):
    """A run folder's files but its log, which a refused resume appends to."""
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name != "train.log"}


def test_more_epochs_for_a_run_that_stopped_early_is_refused(tmp_path):
    from ltr_common.loop import Progress

    ratings, _ = small_data()
    run_dir = tmp_path / "stopped"
    run_dir.mkdir()
    write_json(run_dir / "config.json", {"framework": "jax", **SMALL.to_dict()})
    stopped = Progress(epoch=1, step=12, best=0.5, best_step=6, evals_since_best=5, stopped_early=True)
    trainer = make_backend("jax", SMALL, ratings.num_users, ratings.num_items)
    trainer.save([run_dir / "checkpoint_latest"], stopped.to_dict())
    trainer.finish_saves()
    before = _records(run_dir)
    longer = dataclasses.replace(SMALL, epochs=SMALL.epochs + 5)
    with pytest.raises(
        ConfigError, match=r"^--epochs: .* stopped early at step 12 .* more epochs would train nothing"
    ):
        run("jax", longer, run_dir, data=small_data(), progress_bar=False, resume=True)
    assert _records(run_dir) == before
    assert "resumed from" in (run_dir / "train.log").read_text()  # the log keeps what was read


def test_a_run_that_wrote_no_checkpoint_is_neither_offered_for_resume_nor_changed_by_one(tmp_path):
    # What a run that failed at its first steps leaves: its config and data records, no checkpoint.
    run_dir = tmp_path / "failed"
    run_dir.mkdir()
    write_json(run_dir / "config.json", {"framework": "jax", **SMALL.to_dict(), "learning_rate": 1e38})
    with pytest.raises(
        ConfigError, match=r"or remove it \(it has no checkpoint_latest, so it cannot be resumed"
    ):
        run("jax", SMALL, run_dir, data=small_data(), progress_bar=False)
    saved = dataclasses.replace(SMALL, learning_rate=1e38)
    with pytest.raises(ConfigError, match=r"^--resume: .* has no checkpoint_latest to continue from"):
        run("jax", saved, run_dir, data=small_data(), progress_bar=False, resume=True)
    # A checkpoint that cannot be read: the resume fails before writing anything.
    (run_dir / "checkpoint_latest").write_bytes(b"truncated")
    before = _records(run_dir)
    with pytest.raises(CheckpointError):
        run(
            "jax",
            dataclasses.replace(saved, epochs=5),
            run_dir,
            data=small_data(),
            progress_bar=False,
            resume=True,
        )
    assert _records(run_dir) == before


def test_baselines_check_the_runs_before_fitting(tmp_path, capsys, monkeypatch):
    def slow(*args, **kwargs):
        raise AssertionError("the baselines were fitted before the runs were checked")

    monkeypatch.setattr("ltr_train.compare.load_split", slow)
    monkeypatch.setattr("ltr_train.compare.fit_baselines", slow)
    _other_run(tmp_path / "retrieve", task="retrieve", model="dot")
    _other_run(tmp_path / "refit", refit=True)
    for path in (tmp_path / "retrieve", tmp_path / "refit"):
        (path / "checkpoint_best").write_bytes(b"")
    baselines = load_script("baselines").main
    assert exit_code(baselines, ["--task", "rerank", "--run", f"m={tmp_path / 'retrieve'}"]) == 2
    assert "is a --task retrieve run; this comparison is --task rerank" in error_line(capsys)
    assert exit_code(baselines, ["--task", "rerank", "--run", f"m={tmp_path / 'refit'}"]) == 2
    assert "has refit=True; this comparison has --refit False" in error_line(capsys)
    assert exit_code(baselines, ["--task", "rerank", "--refit", "false", "--baselines", ""]) == 2
    assert "--baselines: none given, and no --run to score" in error_line(capsys)  # --refit read
    # Rerank runs that count other ratings as relevant (MRR, MAP, recall) are not compared.
    for name, threshold in (("at4", 4.0), ("at3", 3.0)):
        _other_run(tmp_path / name, relevance_threshold=threshold)
        (tmp_path / name / "checkpoint_best").write_bytes(b"")
    runs = ["--run", f"A={tmp_path / 'at4'}", "--run", f"B={tmp_path / 'at3'}"]
    assert exit_code(baselines, ["--task", "rerank", *runs]) == 2
    assert "are measured otherwise (relevance_threshold: 3.0 and 4.0)" in error_line(capsys)
    twice = ["--run", f"A={tmp_path / 'retrieve'}", "--run", f"A={tmp_path / 'refit'}"]
    assert exit_code(baselines, ["--task", "rerank", *twice]) == 2
    assert "--run: the label 'A' is given twice" in error_line(capsys)
    # The baselines extra not installed: said before any work, with what to keep.
    monkeypatch.setitem(sys.modules, "implicit", None)  # its import fails
    assert exit_code(baselines, ["--task", "retrieve", "--baselines", "ease,als,item_knn"]) == 2
    assert error_line(capsys).endswith(
        "--baselines: als needs implicit, not installed: pip install -e '.[baselines]'; or leave "
        "them out: --baselines ease,item_knn"
    )


@pytest.fixture(scope="module")
def checkpoints(movielens, tmp_path_factory):
    """``{framework: checkpoint_best}`` of an untrained SMALL model sized for MovieLens."""
    folder = tmp_path_factory.mktemp("checkpoints")
    paths = {}
    for framework in ("jax", "torch"):
        paths[framework] = folder / framework
        make_backend(framework, SMALL, movielens.num_users, movielens.num_items).save(
            [paths[framework]], {"step": 0}
        )
    return paths


def _run_dir(path, framework, checkpoint):
    path.mkdir()
    write_json(path / "config.json", {"framework": framework, **SMALL.to_dict()})
    (path / "checkpoint_best").write_bytes(checkpoint.read_bytes())
    return path


def test_analyse_run_refuses_runs_it_cannot_analyse_with_one_line(tmp_path, capsys):
    analyse = load_script("analyse_run").main
    sequence = tmp_path / "sequence"
    sequence.mkdir()
    write_json(sequence / "config.json", {"framework": "jax", **SMALL.to_dict(), "model": "sequence"})
    assert exit_code(analyse, [str(sequence)]) == 2
    assert "is a --model sequence run; this analysis replaces each user's embedding" in error_line(capsys)
    # Data where every user has one training rating: no training order, no mean user to take.
    rows = [f"{u},{i},{1 + (u + i) % 5},{100 * u + i}" for u in range(1, 6) for i in range(1, 4)]
    table = tmp_path / "one.csv"
    table.write_text("user_id,item_id,rating,timestamp\n" + "\n".join(rows) + "\n")
    config = dataclasses.replace(SMALL, data=str(table), test_size=1, validation_size=1)
    run_dir = tmp_path / "one"
    run_dir.mkdir()
    write_json(run_dir / "config.json", {"framework": "jax", **config.to_dict()})
    make_backend("jax", config, 5, 3).save([run_dir / "checkpoint_best"], {"step": 0})
    assert exit_code(analyse, [str(run_dir)]) == 2
    assert "no user has a training order (two training ratings or more)" in error_line(capsys)


def test_a_run_relabelled_to_the_other_framework_is_one_line_and_status_1(tmp_path, capsys, checkpoints):
    run_dir = _run_dir(tmp_path / "run", "torch", checkpoints["jax"])
    assert load_script("export_embeddings").main([str(run_dir)]) == 1
    line = error_line(capsys)
    assert ": error: " in line
    assert "a JAX trainer's checkpoint; this is the PyTorch trainer" in line


def test_the_scripts_read_the_previous_best_checkpoint_when_the_best_is_damaged(
    tmp_path, capsys, checkpoints
):
    # As train.py does: checkpoints are written whole before the current one becomes .prev.
    run_dir = _run_dir(tmp_path / "run", "jax", checkpoints["jax"])
    (run_dir / "checkpoint_best.prev").write_bytes((run_dir / "checkpoint_best").read_bytes())
    (run_dir / "checkpoint_best").write_bytes(b"truncated")
    assert load_script("export_embeddings").export(run_dir, tmp_path / "out").is_file()
    with logged() as warned:
        assert load_script("recommend").main([str(run_dir), "--user", "1", "--k", "2"]) == 0
    assert capsys.readouterr().out.startswith("top 2 unrated items")
    # The folder has no metrics.json: the run did not finish, and the scripts say so.
    assert warned[:1] == [
        f"{run_dir} has no metrics.json: its training did not finish (stopped, or diverged); its "
        "best checkpoint so far is read\n"
    ]


def test_an_output_folder_that_cannot_be_made_is_refused_before_the_work(tmp_path, capsys, checkpoints):
    # One line naming the flag, status 2, and before anything is computed or written.
    run_dir = _run_dir(tmp_path / "run", "torch", checkpoints["torch"])
    afile = tmp_path / "afile"
    afile.write_text("")
    export = load_script("export_embeddings").main
    assert exit_code(export, [str(run_dir), "--out", "/proc/nope"]) == 2
    assert "--out: cannot make the folder /proc/nope (" in error_line(capsys)
    assert exit_code(export, [str(run_dir), "--out", str(afile)]) == 2
    assert error_line(capsys).endswith(f"--out: {afile} is a file, not a folder")
    recommend = load_script("recommend").main
    assert exit_code(recommend, [str(run_dir), "--all", "--out", str(afile / "recs.csv")]) == 2
    assert error_line(capsys).endswith(f"--out: {afile} is a file, not a folder")
    assert exit_code(recommend, [str(run_dir), "--all", "--out", str(tmp_path)]) == 2
    assert f"--out: {tmp_path} is a folder; give a file name" in error_line(capsys)
    # Folders made for output are taken away again when the work fails (no checkpoint here).
    (run_dir / "checkpoint_best").unlink()
    assert (
        exit_code(recommend, [str(run_dir), "--all", "--out", str(tmp_path / "new" / "sub" / "x.csv")]) == 1
    )
    assert exit_code(export, [str(run_dir), "--out", str(tmp_path / "new2" / "sub")]) == 1
    assert not (tmp_path / "new").exists() and not (tmp_path / "new2").exists()
    for script, argv in (("scale", ["--sizes", "ml-100k"]), ("benchmark", ["--skip-grid"])):
        assert exit_code(load_script(script).main, [*argv, "--out", str(afile / "sub")]) == 2
        assert f"--out: cannot make the folder {afile / 'sub'} (Not a directory)" in error_line(capsys)
    assert exit_code(load_script("scale").main, ["--sizes", "ml-100k", "--batch_size", "0"]) == 2
    assert "--batch_size: expected an integer in [1, 2**31), got 0" in error_line(capsys)
    with pytest.raises(ConfigError, match=f"--run-dir: {afile} is a file, not a folder"):
        run("jax", SMALL, afile, data=small_data(), progress_bar=False)


def test_compare_losses_starts_an_unfinished_run_again(tmp_path, monkeypatch):
    compare_losses = load_script("compare_losses")
    _other_run(tmp_path / "run", framework="jax")
    calls = []

    def fake_run(framework, config, run_dir, **kwargs):
        calls.append(sorted(p.name for p in run_dir.iterdir()) if run_dir.exists() else [])
        return {"validation": {}}

    monkeypatch.setattr(compare_losses, "run", fake_run)
    compare_losses.train_one("jax", SMALL, tmp_path / "run", small_data())
    assert calls == [[]]  # the unfinished attempt's files are gone before the run starts


def test_compare_losses_passes_over_a_diverged_rate_and_refuses_what_would_mislead(
    tmp_path, monkeypatch, capsys
):
    from ltr_common.loop import NonFiniteError

    compare_losses = load_script("compare_losses")
    trained = []

    def fake_run(framework, config, run_dir, **kwargs):
        trained.append(run_dir.name)
        write_json(run_dir / "config.json", run_config_data(framework, config))
        if config.learning_rate > 1.0:
            raise NonFiniteError("step 2: non-finite loss_total=nan")
        score = {0.001: 0.5, 0.0010000001: 0.6}.get(config.learning_rate, 0.4)
        write_json(run_dir / "metrics.json", {"validation": {"ndcg@10": score}})
        return {"validation": {"ndcg@10": score}}

    monkeypatch.setattr(compare_losses, "run", fake_run)
    monkeypatch.setattr(compare_losses, "load_split", lambda config: None)
    monkeypatch.setattr(compare_losses, "configure", lambda framework, config: None)
    rates = [0.001, 0.0010000001, 1e38, 1.0]  # two alike in %g; one that diverges; a whole number
    chosen = compare_losses.compare("rerank", ["listmle"], rates, [42, 43], "jax", tmp_path)["listmle"]
    assert chosen["rate"] == 0.0010000001 and math.isnan(chosen["validation"][1e38])
    assert trained == [
        "lr0.001-seed42",
        "lr0.0010000001-seed42",
        "lr1e+38-seed42",
        "lr1-seed42",  # the name %g gives, as before
        "lr0.0010000001-seed43",
    ]
    assert "non-finite" in (tmp_path / "listmle" / "lr1e+38-seed42" / "diverged.txt").read_text()
    # Again: every run is reused, the diverged one too, and nothing trains.
    trained.clear()
    compare_losses.compare("rerank", ["listmle"], rates, [42, 43], "jax", tmp_path)
    assert trained == []
    for argv, message in (
        (["--losses", ","], "--losses: none given"),
        (["--seeds", "42,42"], "--seeds: 42 given twice"),
        (["--learning-rates", "0.001,1e-3"], "--learning-rates: 0.001 given twice"),
        (["--learning-rates", "nan"], "--learning-rates: expected a finite number > 0, got nan"),
        (["--seeds", "-1"], r"--seeds: expected an integer in \[0, 2\*\*63\), got -1"),
    ):
        assert exit_code(compare_losses.main, ["--task", "rerank", "--out", str(tmp_path), *argv]) == 2
        assert re.search(message, error_line(capsys)), argv
    assert trained == []


def test_the_loop_refuses_a_task_without_a_training_step(tmp_path):
    from ltr_common.loop import train

    class NoSteps:
        name = "empty"

        def steps_per_epoch(self):
            return 0

    with pytest.raises(ValueError, match="empty: an epoch of 0 training steps would never end"):
        train(SMALL, NoSteps(), backend=None, run_dir=tmp_path)


def test_recommend_refuses_incomplete_cached_titles_before_scoring(
    tmp_path, capsys, monkeypatch, checkpoints, movielens
):
    from ltr_common.movielens import DATA_DIR_ENV, MOVIES_FILE, RECBOLE_ITEMS_HEADER, format_udata

    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    cache = tmp_path / "cache" / "ml-100k"
    cache.mkdir(parents=True)
    raw = (movielens.user_raw_ids[movielens.users], movielens.item_raw_ids[movielens.items])
    (cache / "u.data").write_text(format_udata(np.stack([*raw, movielens.ratings, movielens.timestamps], 1)))
    rows = "".join(f"{i}\tMovie {i}\t1995\tDrama\n" for i in range(1, 475))  # 474 of 1,682
    (cache / MOVIES_FILE).write_text("\t".join(RECBOLE_ITEMS_HEADER) + "\n" + rows)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_json(
        run_dir / "config.json", {"framework": "torch", **SMALL.to_dict(), "cache_dir": str(cache.parent)}
    )
    (run_dir / "checkpoint_best").write_bytes(checkpoints["torch"].read_bytes())
    assert load_script("recommend").main([str(run_dir), "--user", "1", "--k", "3"]) == 1
    assert f"{cache / MOVIES_FILE}: expected 1682 items, found 474" in error_line(capsys)


def test_data_too_small_for_a_sequence_model_or_any_split_is_refused_with_advice_that_applies(
    tmp_path, capsys
):
    from ltr_common import load_split

    # Five users of three ratings: one to train on each, one to validate, one to test.
    rows = [f"{u},{i},{1 + (u + i) % 5},{100 * u + i}" for u in range(1, 6) for i in range(1, 4)]
    path = tmp_path / "small.csv"
    path.write_text("user_id,item_id,rating,timestamp\n" + "\n".join(rows) + "\n")
    base = TrainConfig(data=str(path), test_size=1, validation_size=1, model="sequence", negatives=0)
    for task in ("retrieve", "rerank"):
        config = dataclasses.replace(base, task=task)
        _, split = load_split(config)
        with pytest.raises(
            ConfigError, match=r"^--model sequence: no user has two training ratings .* is 1\)"
        ):
            make_task(config, split)
    one_each = tmp_path / "one.csv"
    one_each.write_text("user_id,item_id,rating,timestamp\n" + "\n".join(rows[::3]) + "\n")
    config = dataclasses.replace(base, data=str(one_each), model="dot", negatives=1)
    _, split = load_split(config)
    with pytest.raises(ConfigError, match=r"the data has too few ratings per user for this split$"):
        make_task(config, split)
    # The advice "lower them" can be followed in each script that gives it.
    baselines = load_script("baselines").main
    argv = ["--data", str(path), "--baselines", "popularity"]
    assert exit_code(baselines, argv) == 2
    assert error_line(capsys).endswith("the most any user has is 3); lower them")
    assert exit_code(baselines, [*argv, "--test_size", "1", "--validation_size", "1"]) == 0
    assert "| popularity |" in capsys.readouterr().out


def test_a_reader_that_leaves_early_ends_a_script_quietly():
    """``recommend.py ... | head``: the closed pipe is no error to report, and nothing is
    printed about it at the interpreter's last flush either; whether the script prints inside
    its handling of user errors or after it (``run_script``, every script's ``__main__``)."""
    import subprocess

    prints = "    for _ in range(100000):\n        print('a line of recommendations')\n"
    for code in (
        "import argparse, sys\n"
        "from ltr_train.cli import USER_ERRORS, error_exit\n"
        f"try:\n{prints}"
        "except USER_ERRORS as err:\n"
        "    sys.exit(error_exit(argparse.ArgumentParser(prog='script'), err))\n",
        f"import sys\nfrom ltr_train.cli import run_script\ndef main():\n{prints}    return 0\n"
        "sys.exit(run_script(main))\n",
    ):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout.read(10) == b"a line of "
        proc.stdout.close()
        assert proc.stderr.read() == b"" and proc.wait(timeout=60) == 1


def test_flags_read_alike_with_dash_or_underscore_and_a_long_usage_is_one_pointer(capsys):
    train = load_script("train")
    _, config, args = train.parse_command_line(
        ["--learning-rate", "0.01", "--run_dir", "elsewhere", "--embedding-dim=16", "--no_progress"]
    )
    assert (config.learning_rate, config.embedding_dim) == (0.01, 16)
    assert str(args.run_dir) == "elsewhere" and args.no_progress
    with pytest.raises(SystemExit) as exit_info:
        train.parse_command_line(["--epochs", "0"])
    assert exit_info.value.code == 2
    usage, error = capsys.readouterr().err.splitlines()  # not train.py's 35 lines of usage
    assert usage.endswith(" --help lists every option") and error.endswith(
        "error: --epochs: expected an integer >= 1, got 0"
    )


def test_a_run_without_clipping_is_read_back_and_trains(tmp_path):
    """--grad_clip_norm inf (no clipping, as in PyTorch) goes to config.json as Python writes
    it and reads back as it was; both trainers take it."""
    from ltr_train import load_run_config

    config = dataclasses.replace(SMALL, grad_clip_norm=math.inf)
    write_json(tmp_path / "config.json", run_config_data("jax", config), strict=False)
    assert load_run_config(tmp_path) == ("jax", config)
    ratings, _ = small_data()
    for framework in ("jax", "torch"):
        make_backend(framework, config, ratings.num_users, ratings.num_items)
