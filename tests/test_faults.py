"""Faults: a corrupt checkpoint, and a training process SIGKILLed while writing one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from jax_ltr import _train as jax_train
from ltr_common.files import CheckpointError
from ltr_train import run
from tests._small import SMALL, small_data

ROOT = Path(__file__).resolve().parents[1]
# Train SMALL in run_dir, dying by SIGKILL halfway through the body of checkpoint write number
# ``kill_at`` (0 = never): the new file is half on disk under its temporary name.
PROGRAM = textwrap.dedent(
    """
    import os, signal, sys
    from ltr_common import files
    from ltr_train import run
    from tests._small import SMALL, small_data

    run_dir, kill_at = sys.argv[1], int(sys.argv[2])
    real_write, writes = files.atomic_write_bytes, []

    def dying_write(path, data):
        writes.append(path)
        if len(writes) == kill_at:
            body = data if isinstance(data, bytes) else b"".join(data)  # bytes, or buffers
            with open(f"{path}.partial.tmp", "wb") as out:
                out.write(body[: len(body) // 2])
                out.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        real_write(path, data)

    files.atomic_write_bytes = dying_write
    run("jax", SMALL, run_dir, data=small_data(),
        resume=os.path.exists(os.path.join(run_dir, "checkpoint_latest")), progress_bar=False)
    """
)


def _train_process(run_dir: Path, kill_at: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, str(run_dir), str(kill_at)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _trainer():
    ratings, _ = small_data()
    return jax_train.Trainer(SMALL, ratings.num_users, ratings.num_items)


def _params(run_dir: Path, name: str = "checkpoint_latest"):
    trainer = _trainer()
    progress = trainer.restore(run_dir / name)
    return progress, jax.device_get(trainer.state.params)


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_then_resume_ends_identical(tmp_path):
    steps = run("jax", SMALL, tmp_path / "whole", data=small_data(), progress_bar=False)["steps"]
    # Writes 1-2 are the config and the first best checkpoint; 5 is a mid-run latest.
    killed = _train_process(tmp_path / "killed", kill_at=5)
    assert killed.returncode == -signal.SIGKILL
    partial = [p.name for p in (tmp_path / "killed").glob("*.partial.tmp")]
    assert len(partial) == 1 and partial[0].startswith("checkpoint_")  # died writing a checkpoint
    progress, _ = _params(tmp_path / "killed")  # the previous checkpoint is whole and loads
    assert 0 < progress["step"] < steps
    resumed = _train_process(tmp_path / "killed", kill_at=0)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for name in ("checkpoint_latest", "checkpoint_best"):
        (done, ours), (_, reference) = _params(tmp_path / "killed", name), _params(tmp_path / "whole", name)
        assert done["step"] == steps or name == "checkpoint_best"
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(reference), strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_corrupt_checkpoint_is_named_and_the_previous_one_loads(tmp_path):
    whole = run("jax", SMALL, tmp_path, data=small_data(), progress_bar=False)
    latest = tmp_path / "checkpoint_latest"
    data = latest.read_bytes()
    for broken in (data[: len(data) // 2], data[:10], data[:-1] + bytes([data[-1] ^ 1])):
        latest.write_bytes(broken)
        trainer = _trainer()
        with pytest.raises(CheckpointError, match=r"checkpoint_latest: (checksum mismatch|not a jax-ltr)"):
            trainer.restore(latest)
        assert trainer.restore(tmp_path / "checkpoint_latest.prev")["step"] > 0
    # Resuming falls back to the previous checkpoint and finishes the run.
    resumed = run("jax", SMALL, tmp_path, data=small_data(), resume=True, progress_bar=False)
    assert resumed["steps"] == whole["steps"]
    (tmp_path / "checkpoint_latest.prev").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"checkpoint_latest.*; and .*checkpoint_latest.prev"):
        latest.write_bytes(data[:10])
        run("jax", SMALL, tmp_path, data=small_data(), resume=True, progress_bar=False)


def test_one_checkpoint_written_to_two_names_stays_two_checkpoints(tmp_path):
    # One payload to two names: replacing or damaging one name later leaves the other whole,
    # and the replaced one's bytes stay as ``*.prev``.
    from ltr_common.files import read_checkpoint_bytes, write_checkpoint_bytes

    best, latest = tmp_path / "checkpoint_best", tmp_path / "checkpoint_latest"
    write_checkpoint_bytes([best, latest], b"first")
    write_checkpoint_bytes([latest], b"second")
    assert read_checkpoint_bytes(best) == b"first"
    assert read_checkpoint_bytes(latest) == b"second"
    assert read_checkpoint_bytes(tmp_path / "checkpoint_latest.prev") == b"first"
    (tmp_path / "checkpoint_latest.prev").write_bytes(b"damaged in place")
    assert read_checkpoint_bytes(best) == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_best",
        "checkpoint_latest",
        "checkpoint_latest.prev",
    ]


def test_the_jax_checkpoint_is_flax_msgpack_written_from_views_of_the_arrays(tmp_path, monkeypatch):
    # The payload is written from buffers (large arrays' data uncopied): the file holds the
    # bytes flax.serialization.msgpack_serialize gives, whatever the leaves.
    import flax.serialization

    from jax_ltr._serialize import VIEW_MIN_BYTES, msgpack_buffers
    from ltr_common.files import read_checkpoint_bytes, write_checkpoint_bytes

    trainer = jax_train.Trainer(SMALL, 5, 3000)  # an item table of 3000 rows: over VIEW_MIN_BYTES
    trainer.save([tmp_path / "checkpoint"], {"step": 3, "best": -np.inf, "stopped_early": False})
    trainer.finish_saves()
    payload = read_checkpoint_bytes(tmp_path / "checkpoint")
    raw = flax.serialization.msgpack_restore(payload)
    assert flax.serialization.msgpack_serialize(raw) == payload
    sizes = [leaf.nbytes for leaf in jax.tree.leaves(raw) if isinstance(leaf, np.ndarray)]
    assert max(sizes) >= VIEW_MIN_BYTES > min(sizes)  # both kinds of leaf were written
    edge = VIEW_MIN_BYTES // 4
    tree = {
        "b": {"x": np.arange(edge, dtype=np.float32), "y": np.arange(edge - 1, dtype=np.float32)},
        "a": {
            "transposed": np.arange(300 * 400, dtype=np.float32).reshape(300, 400).T,
            "bool": np.arange(70_000) % 3 == 0,
            "bf16": np.arange(40_000).astype(jax.numpy.bfloat16),
            "int64": np.arange(9_000, dtype=np.int64).reshape(3, 3000),
            "empty": np.zeros((0, 3)),
            "scalar": np.float32(2.5),
            "zero_d": np.asarray(7, np.int32),
            "device": jax.numpy.ones(20_000),
        },
        "progress": {"epoch": 3, "best": -float("inf"), "stopped": False, "none": None, "name": "x"},
        "nothing": {},
    }
    buffers = msgpack_buffers(tree)
    assert b"".join(buffers) == flax.serialization.msgpack_serialize(tree)
    # A 0-d array past the threshold keeps its shape; keys other than str are Flax's to pack.
    wide = {"v": np.zeros((), f"V{VIEW_MIN_BYTES + 8}"), "k": {np.str_("a"): 1.0, "b": 2.0}}
    assert b"".join(msgpack_buffers(wide)) == flax.serialization.msgpack_serialize(wide)
    big = tree["b"]["x"]
    assert any(isinstance(b, memoryview) and np.shares_memory(np.asarray(b), big) for b in buffers)
    write_checkpoint_bytes(tmp_path / "from_buffers", buffers)
    write_checkpoint_bytes(tmp_path / "from_bytes", b"".join(buffers))
    assert (tmp_path / "from_buffers").read_bytes() == (tmp_path / "from_bytes").read_bytes()
    # An array over Flax's chunk size is chunked as Flax chunks it (the limit lowered here).
    monkeypatch.setattr(flax.serialization, "MAX_CHUNK_SIZE", 2**17)
    chunked = {"w": np.arange(2**16, dtype=np.float32), "v": np.arange(2**15, dtype=np.float32)}
    assert b"".join(msgpack_buffers(chunked)) == flax.serialization.msgpack_serialize(chunked)


@pytest.mark.parametrize(("writer", "reader"), [("jax", "torch"), ("torch", "jax")])
def test_another_frameworks_checkpoint_is_a_checkpoint_error_and_the_previous_one_loads(
    writer, reader, tmp_path
):
    # Checksums hold: only decoding tells these payloads apart.
    from ltr_common.files import restore_with_fallback
    from ltr_train import make_backend

    ours, theirs = make_backend(reader, SMALL, 5, 7), make_backend(writer, SMALL, 5, 7)
    latest = tmp_path / "checkpoint_latest"
    ours.save([latest], {"step": 3})
    theirs.save([latest], {"step": 4})  # ours is now checkpoint_latest.prev
    names = {"jax": "JAX", "torch": "PyTorch"}
    with pytest.raises(CheckpointError) as err:
        ours.restore(latest)
    assert str(err.value).startswith(
        f"{latest}: a {names[writer]} trainer's checkpoint; this is the {names[reader]} trainer"
    )
    assert restore_with_fallback(ours.restore, latest) == {"step": 3}
    theirs.save([latest], {"step": 5})  # both names now hold the other framework's checkpoints
    with pytest.raises(CheckpointError, match=r"checkpoint_latest: .*; and .*checkpoint_latest.prev: "):
        restore_with_fallback(ours.restore, latest)


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_a_payload_no_trainer_wrote_is_a_checkpoint_error(framework, tmp_path):
    from ltr_common.files import write_checkpoint_bytes
    from ltr_train import make_backend

    trainer = make_backend(framework, SMALL, 5, 7)
    for payload in (b"", b"\x93\x01\x02\x03", b"PK\x03\x04 not a zip", b"\x81\xa5state\x01"):
        write_checkpoint_bytes(tmp_path / "checkpoint", payload)
        with pytest.raises(CheckpointError, match="checkpoint: "):
            trainer.restore(tmp_path / "checkpoint")


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_a_checkpoint_saved_in_the_background_holds_the_state_of_the_call(framework, tmp_path):
    # The loop's checkpoints are serialised on a thread of their own while the next steps run:
    # JAX donates the state's buffers to the next step and PyTorch updates its tensors in
    # place, so what is written must be a copy taken at the call. The writer's thread is held
    # here until a step has run.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from ltr_common.tasks import make_task
    from ltr_train import make_backend

    ratings, split = small_data()
    trainer = make_backend(framework, SMALL, ratings.num_users, ratings.num_items)
    batch, pairs = next(iter(make_task(SMALL, split).epoch_inputs(epoch=0)))
    trainer.train_step(batch, pairs)
    at_call = trainer.weights()
    trainer.save([tmp_path / "now"], {"step": 1})
    gate = threading.Event()
    trainer._checkpoints._thread = ThreadPoolExecutor(1)
    trainer._checkpoints._thread.submit(gate.wait)
    trainer.save([tmp_path / "later"], {"step": 1}, background=True)
    trainer.train_step(batch, pairs)
    assert not (tmp_path / "later").exists()
    gate.set()
    trainer.finish_saves()
    assert (tmp_path / "later").read_bytes() == (tmp_path / "now").read_bytes()
    fresh = make_backend(framework, SMALL, ratings.num_users, ratings.num_items)
    assert fresh.restore(tmp_path / "later") == {"step": 1}
    restored = fresh.weights()
    for name, value in at_call.items():
        np.testing.assert_array_equal(restored[name], value, err_msg=name)
    assert any(not np.array_equal(trainer.weights()[name], at_call[name]) for name in at_call)


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_a_background_checkpoint_write_that_fails_raises_when_the_saves_are_finished(framework, tmp_path):
    from ltr_train import make_backend

    trainer = make_backend(framework, SMALL, 5, 7)
    (tmp_path / "a_file").write_text("not a folder")
    trainer.save([tmp_path / "a_file" / "checkpoint_latest"], {"step": 1}, background=True)
    with pytest.raises(OSError):
        trainer.finish_saves()
    trainer.finish_saves()  # the error is raised once
    trainer.save([tmp_path / "checkpoint_latest"], {"step": 2}, background=True)
    assert trainer.restore(tmp_path / "checkpoint_latest") == {"step": 2}  # restore waits for it
