"""The running sum on ListMLE's path, timed alone in each way XLA could compute it.

ListMLE's one-shift path spends its time, besides the label order, in running sums over
lists laid out one per column ([L, B]): the suffix sums ``S_p = sum_{q >= p} exp(s_q - m)``
and, in the gradient, prefix sums of the same shape. ``jax_ltr`` computes them with
``method="scan"`` (a Kahan-compensated ``lax.scan``) or ``"associative"``
(``lax.associative_scan``). Two other ways are timed beside them, as candidates for a GPU.
On a 2-core CPU neither beat the scan (``running_sum_rows``, 10 rounds, one run, another
process busy beside it): at (1024, 200) the scan took 0.86 ms, ``lax.cumsum`` 1.01, the
blocked matmul 0.88 and the associative scan 1.18; at (4096, 1000) 13.6, 35.0, 21.3 and
65.5 ms.

* ``lax.cumsum``: XLA's own cumulative sum. JAX lowers it to a reduce-window, which XLA's
  GPU compiler may rewrite into a blocked scan or a library kernel (the lowering differs
  between JAX versions; ``lowered`` records what the compiled program holds).
* ``blocked matmul``: the sums within blocks of ``BLOCK`` places as a product with a
  triangular matrix of ones (full float32 precision, no TF32), and the blocks' totals by
  an associative scan: matrix units instead of ``log L`` passes over memory.

Each candidate's largest relative error against a float64 running sum is reported with its
time: every one only adds terms >= 0, in some order, so each is within ``(L - 1)`` units of
roundoff of the sum, and the scan's compensation keeps it within about one.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_ltr._losses import _running_sum
from ltr_bench.grid import make_inputs
from ltr_bench.registry import Impl
from ltr_bench.timing import quartiles, time_cells

BLOCK = 16


def _blocked_matmul(x):
    """Suffix sums along axis 0 of [L, B]: within blocks of ``BLOCK`` places a product with
    an upper-triangular matrix of ones, across blocks an associative scan of their totals."""
    length, width = x.shape
    padded = jnp.pad(x, ((0, -length % BLOCK), (0, 0))).reshape(-1, BLOCK, width)
    ones = jnp.triu(jnp.ones((BLOCK, BLOCK), x.dtype))  # [i, j] = 1 where j >= i
    within = jnp.einsum("ij,kjb->kib", ones, padded, precision=lax.Precision.HIGHEST)
    # each block's share of what comes after it: the suffix sums of the totals, shifted by
    # one block (a sum only: subtracting a block's own total would cancel)
    suffix = lax.associative_scan(jnp.add, within[:, 0, :], reverse=True, axis=0)
    after = jnp.concatenate([suffix[1:], jnp.zeros_like(suffix[:1])])
    return (within + after[:, None, :]).reshape(-1, width)[:length]


CANDIDATES = {
    "scan": lambda x: _running_sum(x, "scan", reverse=True),
    "associative": lambda x: _running_sum(x, "associative", reverse=True),
    "lax.cumsum": lambda x: lax.cumsum(x, axis=0, reverse=True),
    "lax.cumsum flipped": lambda x: jnp.flip(lax.cumsum(jnp.flip(x, 0), axis=0), 0),
    "blocked matmul": _blocked_matmul,
}


def relative_errors(x) -> dict[str, float]:
    """Each candidate's largest relative error on the running sums of ``x`` ([L, B], >= 0,
    float32) against float64 sums, jitted."""
    exact = _exact(x)
    return {name: _largest_error(jax.jit(candidate)(x), exact) for name, candidate in CANDIDATES.items()}


def _exact(x) -> np.ndarray:
    return np.cumsum(np.asarray(x, np.float64)[::-1], axis=0)[::-1]


def _largest_error(ours, exact) -> float:
    ours = np.asarray(ours, np.float64)
    return float((np.abs(ours - exact) / np.where(exact > 0, exact, 1.0)).max())


def _shares(scores, where):
    """The shares ``exp(s - m)`` of each list, one list per column ([L, B]), masked items 0."""
    top = jnp.max(jnp.where(where, scores, -jnp.inf), axis=-1, keepdims=True)
    return jnp.where(where, jnp.exp(scores - top), 0.0).T


def _impl(name: str) -> Impl:
    def fn(scores, labels, where):
        del labels
        return jnp.sum(jnp.log1p(CANDIDATES[name](_shares(scores, where))))

    return Impl(name, "running sum", "jax", fn)


def _lowered(text: str) -> str:
    """What a compiled program (its text) computes the running sum with: its reduce-windows,
    loops, products and library calls, counted."""
    kinds = {
        "reduce-window": " reduce-window(",
        "while loop": " while(",
        "dot": " dot(",
        "custom call": " custom-call(",
    }
    found = [f"{text.count(op)} {kind}" for kind, op in kinds.items() if op in text]
    return ", ".join(found) or "none of a loop, reduce-window, dot or call"


def running_sum_rows(shapes, *, runs: int, deadline: float | None = None) -> list[dict]:
    """A row per (B x L, candidate): the median forward time of ``sum(log1p(S))`` over the
    shares of a list batch (``make_inputs``' scores and mask, float32), timed in turns; the
    largest relative error of ``S``; and what the program was lowered to."""
    rows = []
    names = list(CANDIDATES)
    for batch, length in shapes:
        if deadline is not None and time.monotonic() > deadline:
            rows += [{"B": batch, "L": length, "candidate": n, "skipped": "time budget spent"} for n in names]
            continue
        scores, labels, where, pairs = make_inputs(batch, length)
        shares = _shares(jnp.asarray(scores, jnp.float32), jnp.asarray(where))
        exact = _exact(shares)
        results = time_cells(
            [_impl(n) for n in names], (scores, labels, where, pairs), "float32", "forward", runs
        )
        for name, result in zip(names, results, strict=True):
            row = {"B": batch, "L": length, "candidate": name}
            if "failed" in result:
                rows.append(row | {"skipped": result["failed"]})
                continue
            compiled = jax.jit(CANDIDATES[name]).lower(shares).compile()
            row |= {
                "median_ms": quartiles(result["times"])[1] * 1e3,
                "compile_s": result["compile_s"],
                "max_rel_error": _largest_error(compiled(shares), exact),
                "lowered": _lowered(compiled.as_text()),
            }
            rows.append(row)
    return rows


def running_sum_table(rows: list[dict]) -> list[str]:
    """Markdown lines: each candidate's time, its ratio to the scan's, its error, its lowering."""
    lines = [
        "| B x L | running sum | ms | / scan | max rel. error | compiled to |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        size = f"{row['B']}x{row['L']}"
        if "median_ms" not in row:
            lines.append(f"| {size} | {row['candidate']} | {row['skipped']} | | | |")
            continue
        scan = next(
            (r for r in rows if r["B"] == row["B"] and r["L"] == row["L"] and r["candidate"] == "scan"), {}
        )
        ratio = f"{row['median_ms'] / scan['median_ms']:.2f}" if "median_ms" in scan else "–"
        lines.append(
            f"| {size} | {row['candidate']} | {row['median_ms']:.3g} | {ratio} "
            f"| {row['max_rel_error']:.1e} | {row['lowered']} |"
        )
    return lines
