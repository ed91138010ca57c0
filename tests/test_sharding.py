"""Data-parallel training on 4 simulated CPU devices equals training on one.

Runs in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the flag
must be set before JAX starts). Tolerances: float32 sums over a batch split in four are
added in another order. The loss and gradient norm of a step agree to rtol 1e-5 (the parity
suite's float32 tolerance). Parameters after the step agree to atol 2e-5, 2% of the
learning rate: Adam's first update is lr * g / (|g| + 1e-8), so for gradient entries near
1e-8 a rounding difference in g moves the update by a visible fraction of lr (8e-6 seen);
the output bias, whose exact gradient is 0, is only held within lr of its start.
Validation metrics after a 1-epoch run agree to 1e-4.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ltr_common import ConfigError, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
# The suite's quick compilation (conftest.py sets XLA_FLAGS) in every subprocess here, so
# that the runs compared with each other compile alike.
QUICK_COMPILE = os.environ.get("XLA_FLAGS", "")
# One configuration for the in-process runs and the two-process launch, parsed the same way.
CONFIG_FLAGS = (
    "--task rerank --model mlp --loss hybrid --pointwise_weight 0 --learning_rate 1e-3 --weight_decay 0"
    " --bias_weight_decay 0 --max_list_size 200 --early_stop_patience 5 --epochs 1 --batch_size 128"
    " --embedding_dim 16 --mlp_hidden 16 --eval_every 4 --pairs_per_list 8 --length_bucketing false"
    " --compilation_cache false"
).split()
PROGRAM = textwrap.dedent(
    """
    import dataclasses, json, sys, tempfile
    import jax, numpy as np
    from jax_ltr import _train
    from ltr_common import ConfigError, TrainConfig, iterate_batches, load_split, parse_config
    from ltr_common.tasks import host_inputs
    from ltr_train import run

    assert len(jax.devices()) == 4, jax.devices()
    errors = {}
    for flags in ({"batch_size": 130}, {"batch_size": 130, "devices": 4}, {"batch_size": 6, "devices": 4}):
        try:
            _train.make_mesh(TrainConfig(**flags))
        except ConfigError as err:
            errors[json.dumps(flags)] = str(err)
    config, _ = parse_config(sys.argv[1:])  # the same flags as the two-process launch below
    ratings, split = load_split(config)
    batch = next(iterate_batches(split.train, batch_size=128, shuffle=True, seed=42, epoch=0))
    batch, pairs = host_inputs(batch, config, epoch=0, index=0)
    out = {"errors": errors}
    for devices in (1, 4):
        each = dataclasses.replace(config, devices=devices)
        trainer = _train.Trainer(each, ratings.num_users, ratings.num_items)
        metrics = trainer.metrics_to_host([trainer.train_step(batch, pairs)])[0]
        params = jax.tree.map(lambda x: np.asarray(x).tolist(), jax.device_get(trainer.state.params))
        kernel = trainer.state.params["output"]["kernel"]
        out[f"step{devices}"] = {"metrics": metrics, "params": params, "devices": trainer.devices(),
                                 "replicated": kernel.sharding.is_fully_replicated}
        with tempfile.TemporaryDirectory() as run_dir:
            result = run("jax", each, run_dir, data=(ratings, split), progress_bar=False)
        out[f"run{devices}"] = result["validation"]
    # A sequence model's packed step (several users to a row, the rows split over devices).
    from ltr_common.tasks import make_task
    small = dict(history_length=200, batch_size=32, embedding_dim=8, num_heads=2, dropout=0.0)
    small |= {"length_bucketing": False, "negatives": 0}  # the model's defaults: whole catalog, any length
    sequence = dataclasses.replace(TrainConfig(task="retrieve", model="sequence"), **small)
    sequence_batch, _ = next(iter(make_task(sequence, split).epoch_inputs(epoch=0)))
    for devices in (1, 4):
        each = dataclasses.replace(sequence, devices=devices)
        trainer = _train.Trainer(each, ratings.num_users, ratings.num_items)
        metrics = trainer.metrics_to_host([trainer.train_step(sequence_batch, None)])[0]
        out[f"sequence{devices}"] = {"metrics": metrics, "traced": trainer.traced_shapes}
    json.dump(out, sys.stdout)
    """
)


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    # Run once per test run, not once per xdist worker: the first worker to get here runs
    # the program, the others wait on the lock and read its result (the folder is this
    # run's own: the workers' temporary folders share it as parent).
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    result = shared / "four_devices.json"
    with open(shared / "four_devices.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        failed = shared / "four_devices.failed"  # one failure fails every worker at once
        assert not failed.exists(), failed.read_text()
        if not result.exists():
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "XLA_FLAGS": f"--xla_force_host_platform_device_count=4 {QUICK_COMPILE}",
            }
            done = subprocess.run(
                [sys.executable, "-c", PROGRAM, *CONFIG_FLAGS],
                capture_output=True,
                text=True,
                env=env,
                timeout=900,
                check=False,
            )
            if done.returncode != 0:
                failed.write_text(done.stderr[-4000:])
            assert done.returncode == 0, done.stderr[-4000:]
            result.write_text(done.stdout.strip().splitlines()[-1])
    return json.loads(result.read_text())


def test_a_sharded_step_equals_the_single_device_step(four_devices):
    import jax
    import numpy as np

    one, four = four_devices["step1"], four_devices["step4"]
    assert four["devices"].startswith("4 of ") and one["devices"].startswith("1 of ")
    assert four["replicated"]  # parameters stay replicated after the step
    for key in ("loss_total", "grad_norm"):
        assert four["metrics"][key] == pytest.approx(one["metrics"][key], rel=1e-5)
    # The output bias shifts every score of a list alike, which neither ListMLE nor the
    # pairwise loss sees (the pointwise weight is 0): its exact gradient is 0, so Adam's first
    # update of it, lr * g / (|g| + 1e-8), is of rounding noise, anywhere in [-lr, lr] in
    # either run. It is held to that; every other parameter to the tolerance above.
    learning_rate = float(CONFIG_FLAGS[CONFIG_FLAGS.index("--learning_rate") + 1])

    def without_output_bias(params):
        assert abs(params["output"]["bias"][0]) <= learning_rate * (1 + 1e-6)  # it starts at 0
        return {**params, "output": {k: v for k, v in params["output"].items() if k != "bias"}}

    one_params, four_params = without_output_bias(one["params"]), without_output_bias(four["params"])
    leaves = zip(jax.tree.leaves(one_params), jax.tree.leaves(four_params), strict=True)
    for a, b in leaves:
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=2e-5)


def test_a_packed_sequence_step_on_four_devices_equals_one(four_devices):
    one, four = four_devices["sequence1"], four_devices["sequence4"]
    # Both packed (a step's traced shape ends with its row count, fewer than the 32 users).
    assert [len(shape) for shape in one["traced"] + four["traced"]] == [3, 3]
    assert four["traced"][0][2] < 32 and four["traced"][0][2] % 4 == 0
    for key in ("loss_total", "grad_norm"):
        assert four["metrics"][key] == pytest.approx(one["metrics"][key], rel=1e-5)


def test_a_one_epoch_run_on_four_devices_ends_like_one(four_devices):
    one, four = four_devices["run1"], four_devices["run4"]
    assert one.keys() == four.keys()
    for key in one:
        assert four[key] == pytest.approx(one[key], abs=1e-4), key


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_processes_of_two_devices_train_like_one_device(four_devices, tmp_path):
    # The multi-host launch of docs/training.md, on one machine: two processes, two CPU devices each.
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XLA_FLAGS": f"--xla_force_host_platform_device_count=2 {QUICK_COMPILE}",
    }
    flags = [*CONFIG_FLAGS, "--no-progress"]
    address = f"localhost:{_free_port()}"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "scripts" / "train.py"),
                "--run-dir",
                str(tmp_path),
                *flags,
                "--coordinator_address",
                address,
                "--num_processes",
                "2",
                "--process_id",
                str(rank),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
    assert "trainer on 4 of" in (tmp_path / "train.log").read_text()
    validation = json.loads((tmp_path / "metrics.json").read_text())["validation"]
    for key, value in four_devices["run1"].items():
        assert validation[key] == pytest.approx(value, abs=1e-4), key


def test_batch_size_must_split_over_the_devices(four_devices):
    # On 4 devices: a batch of 130 lists does not split, whether the devices are all of
    # them (--devices 0) or named; 6 lists on 4 devices neither. No silent padding.
    errors = four_devices["errors"]
    assert set(errors) == {
        '{"batch_size": 130}',
        '{"batch_size": 130, "devices": 4}',
        '{"batch_size": 6, "devices": 4}',
    }
    for flags, message in errors.items():
        size = json.loads(flags)["batch_size"]
        assert message.startswith(f"--batch_size: {size} lists do not split evenly over 4 devices"), message


def test_device_count_errors():
    from jax_ltr._train import make_mesh

    with pytest.raises(ConfigError, match="--devices: asked for 64, JAX sees 1"):
        make_mesh(TrainConfig(devices=64))
    with pytest.raises(ConfigError, match="--devices: expected an integer >= 0, got -1"):
        TrainConfig(devices=-1)
