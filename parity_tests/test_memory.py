"""All-pairs pairwise PL, ApproxNDCG and LambdaLoss in bounded memory: long lists run under
1 GiB of peak resident memory.

A dense [B, L, L] formulation needs 1.6 GB for one float32 array at (4, 10000), more than
the bound on its own, and 1.0 GB at (64, 2000), where the gradient needs several; the
blocked sweeps keep O(B·L·block). Measured in a fresh process (its
peak resident set, VmHWM, imports included).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    import jax_ltr

    def peak_kib():
        # VmHWM: this process's own high-water mark. Not getrusage's ru_maxrss, which Linux
        # carries over exec from the process that started this one (a pytest worker's GiB).
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    def total(name):
        return lambda s, y, w: getattr(jax_ltr, name)(s, y, where=w, reduction="sum")

    cases = [
        ("pairwise_pl_loss", 64, 2000),
        ("pairwise_pl_loss", 4, 10000),
        ("approx_ndcg_loss", 4, 10000),
        ("lambda_loss", 4, 10000),
    ]
    for name, batch, length in cases:
        loss = jax.jit(jax.value_and_grad(total(name)))
        rng = np.random.default_rng(0)
        scores = jnp.asarray(rng.normal(size=(batch, length)), jnp.float32)
        labels = jnp.asarray(rng.integers(1, 6, (batch, length)), jnp.float32)
        where = jnp.asarray(rng.random((batch, length)) < 0.9)
        value, grad = jax.block_until_ready(loss(scores, labels, where))
        assert np.isfinite(float(value)) and bool(jnp.isfinite(grad).all())
        # Each list's gradient sums to zero (every pair pulls its two items apart equally).
        assert float(jnp.abs(grad.sum(-1)).max()) < 1e-2 * float(jnp.abs(grad).max()) * length ** 0.5
        print(batch, length, float(value), peak_kib())
    """
)


@pytest.mark.slow
def test_long_lists_run_in_bounded_memory():
    # XLA's default compiler settings, as in a user's run (the suite's quick compilation,
    # conftest.py, makes these long-list programs several times slower).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XLA_FLAGS": ""}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    peak_kib = max(int(line.split()[-1]) for line in lines if line.strip())
    assert peak_kib < 2**20, f"peak resident memory {peak_kib / 2**20:.2f} GiB:\n{done.stdout}"


@pytest.mark.parametrize("name", ["approx_ndcg_loss", "pairwise_pl_loss", "lambda_loss"])
def test_the_sweeps_compile_to_temporary_buffers_of_the_blocks_not_of_the_pairs(name):
    # XLA's own account of the compiled program's scratch at (2, 16384): a [L, L] array of
    # bools alone would be 268 MB; the sweeps' steps hold a few [B, L, block] floats (a block
    # of 8 or 16 items: 2 MB each).
    import jax
    import jax.numpy as jnp

    import jax_ltr

    batch, length = 2, 16384
    scores, labels = jnp.zeros((batch, length)), jnp.ones((batch, length))
    where = jnp.ones((batch, length), bool)
    loss = jax.jit(jax.value_and_grad(lambda s: getattr(jax_ltr, name)(s, labels, where=where)))
    temp = loss.lower(scores).compile().memory_analysis().temp_size_in_bytes
    assert temp < 32 * 2**20, f"{name}: {temp / 2**20:.1f} MiB of temporary buffers"
