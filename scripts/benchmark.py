"""Benchmark the ranking losses: every JAX method against PyTorch eager, torch.compile, the
original per-row Python loop and Rax, on the same inputs; and the two trainers end to end.

    python scripts/benchmark.py [--grid 64x50,1024x200] [--losses listmle,pairwise_pl,hybrid]
                                [--modes forward,forward+backward] [--dtypes float32,bfloat16]
                                [--implementations NAME ...] [--runs 20] [--out DIR] [--train]
                                [--main-job retrieve,rerank] [--skip-grid]

Each cell (loss, labels, B x L, dtype, mode) compiles and warms up every implementation; then
``--runs`` rounds each time one call of every implementation (JAX: ``block_until_ready``), in
an order rotated from round to round and after one untimed call for calls under 50 ms
(``time_cells``), so the implementations share the machine's slow spells and their ratios
are side by side; the median and the interquartile range are reported, with
the compile time (first call, or XLA's lower+compile) apart. Inputs are arguments of the
compiled function, never constants closed over. Labels are ratings 1..5 (or continuous, see
``--labels``) with 10% of the items masked; "vs ref" is the largest relative difference of
the value from PyTorch eager's on the same inputs, so every row is shown to do the same work.
Memory: XLA's compiled temporary buffers for JAX rows (the live scratch of the program);
not measured for PyTorch on CPU. Cells that cannot run say why (``n/a``): the original loop
beyond ``--loop-max-items`` items, dense [B, L, L] implementations beyond ``--dense-max-pairs``.

``--out DIR`` writes ``benchmark.csv``, ``benchmark.json`` and ``benchmark.png`` (time per
list against L, log-log, a line per implementation; one panel per loss and mode).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

import jax_ltr  # noqa: E402
import torch_ltr  # noqa: E402
from ltr_common.config import TrainConfig  # noqa: E402
from ltr_common.files import atomic_write_bytes, atomic_write_text  # noqa: E402
from ltr_common.losses import LOSSES, objective_terms, training_objective  # noqa: E402
from ltr_common.models import MODELS  # noqa: E402
from ltr_common.pairs import sample_pairs  # noqa: E402

DEFAULT_GRID = "64x50,256x200,1024x200,1024x1000,64x2000"
LEVELS = (1, 2, 3, 4, 5)
LOSS_NAMES = tuple(LOSSES)  # the registry (ltr_common.losses): every loss the trainers train
MODES = ("forward", "forward+backward")
# torch_ltr's all-pairs forms build [B, L, L] arrays
TORCH_DENSE = {"pairwise_pl", "hybrid", "approx_ndcg", "lambdaloss"}


@dataclasses.dataclass(frozen=True)
class Impl:
    name: str
    loss: str
    framework: str  # "jax" | "torch"
    fn: Callable  # (scores, labels, where) -> scalar loss
    compiled: bool = True
    dense: bool = False  # materialises [B, L, L]
    loop: bool = False  # the original per-row Python loop
    dtypes: tuple[str, ...] = ("float32", "bfloat16")
    trainer: bool = False  # the trainer's call: fn(scores, labels, where, pairs)

    @property
    def call(self) -> str:
        return "trainer" if self.trainer else "default"


def original_listmle(scores, labels, where):
    """The original design's ListMLE: a Python loop over lists and over positions."""
    losses = []
    for row in range(scores.shape[0]):
        valid = where[row]
        s, y = scores[row][valid], labels[row][valid]
        if s.shape[0] < 2:
            continue
        ranked = s[torch.argsort(y, descending=True, stable=True)]
        running = ranked[-1]
        total = running - ranked[-1]
        for i in range(ranked.shape[0] - 2, -1, -1):
            running = torch.logaddexp(running, ranked[i])
            total = total + (running - ranked[i])
        losses.append(total)
    return torch.stack(losses).mean()


TRAINER_DEFAULTS = TrainConfig()  # options a loss takes from the configuration: the trainer's


def _default_call(module, loss):
    """``module``'s function of registered ``loss`` with its default options and those it
    takes from the configuration (``Loss.config_options``) at their defaults (top-k ListMLE's
    ``k``, the sigmoid loss's relevance ``threshold``), but without the random inputs a
    trainer adds (``_trainer_call``)."""
    fn = getattr(module, loss.function)
    options = {keyword: getattr(TRAINER_DEFAULTS, field) for keyword, field in loss.config_options}
    return lambda s, y, w: fn(s, y, where=w, **options)


def _trainer_terms(loss) -> tuple[tuple[str, float], ...]:
    return objective_terms(loss.name, hybrid_alpha=TRAINER_DEFAULTS.hybrid_alpha)


def trains_with_random_inputs(loss) -> bool:
    """Whether the trainer calls ``loss`` with sampled pairs, so that its call differs from the
    default call. (A random tie order costs the trainer's call nothing: the trainers shuffle
    each list on the host, ``ltr_common.tasks.host_inputs``, and the loss breaks ties by
    position, as in the default call; the inputs here are random already.)"""
    return any(LOSSES[n].takes_pairs for n, _ in _trainer_terms(loss))


def _trainer_call(module, loss):
    """``module``'s ``loss`` exactly as the trainers call it (``training_objective``): the
    configuration's options and the batch's sampled pairs (``pairs_per_list`` per list)."""
    terms = _trainer_terms(loss)
    return lambda s, y, w, p: training_objective(module, s, y, w, p, terms, TRAINER_DEFAULTS)[0]


def implementations() -> list[Impl]:
    """Every registered loss as ``jax`` (jax_ltr's default call), ``torch eager`` and
    ``torch.compile``, and where the trainer adds a tie order or sampled pairs, the same three
    as the trainer calls it (``... trainer``); then other JAX methods, Rax's version of a
    loss, the original loop."""
    impls = []
    for loss in LOSSES.values():
        dense = loss.name in TORCH_DENSE
        impls += [
            Impl("jax", loss.name, "jax", _default_call(jax_ltr, loss)),
            Impl("torch eager", loss.name, "torch", _default_call(torch_ltr, loss), False, dense),
            Impl("torch.compile", loss.name, "torch", _default_call(torch_ltr, loss), True, dense),
        ]
        if trains_with_random_inputs(loss):
            # sampled pairs, never all pairs: no [B, L, L] in either framework
            impls += [
                Impl("jax trainer", loss.name, "jax", _trainer_call(jax_ltr, loss), trainer=True),
                Impl(
                    "torch eager trainer",
                    loss.name,
                    "torch",
                    _trainer_call(torch_ltr, loss),
                    False,
                    trainer=True,
                ),
                Impl(
                    "torch.compile trainer", loss.name, "torch", _trainer_call(torch_ltr, loss), trainer=True
                ),
            ]
    for method in jax_ltr.LISTMLE_METHODS:
        impls.append(
            Impl(
                f"jax {method}",
                "listmle",
                "jax",
                lambda s, y, w, m=method: jax_ltr.listmle_loss(s, y, where=w, method=m),
            )
        )
    for method in jax_ltr.LISTMLE_METHODS:
        impls.append(
            Impl(
                f"jax {method} levels",
                "listmle",
                "jax",
                lambda s, y, w, m=method: jax_ltr.listmle_loss(s, y, where=w, levels=LEVELS, method=m),
            )
        )
    impls += [
        Impl("original loop", "listmle", "torch", original_listmle, False, loop=True, dtypes=("float32",)),
    ]
    try:
        import rax
    except ImportError:
        return impls
    impls += [
        Impl("rax", "listmle", "jax", lambda s, y, w: rax.listmle_loss(s, y, where=w)),
        Impl(
            "rax", "pairwise_pl", "jax", lambda s, y, w: rax.pairwise_logistic_loss(s, y, where=w), dense=True
        ),
        Impl(
            "rax",
            "softmax",
            "jax",
            lambda s, y, w: rax.softmax_loss(s, y, where=w, label_fn=rax.utils.normalize_probabilities),
        ),
        Impl("rax", "approx_ndcg", "jax", rax_approx_ndcg(rax), dense=True),
        Impl("rax", "lambdaloss", "jax", rax_lambdaloss(rax), dense=True),
        Impl(
            "rax",
            "sigmoid_ce",
            "jax",
            lambda s, y, w: rax.pointwise_sigmoid_loss(
                s, (y >= TRAINER_DEFAULTS.relevance_threshold).astype(s.dtype), where=w
            ),
        ),
    ]
    return impls


def rax_lambdaloss(rax, mu: float = 10.0):
    """LambdaLoss with NDCG-Loss2++ weights in Rax: ``pairwise_logistic_loss`` with
    ``dcg_lambdaweight + mu * dcg2_lambdaweight``, both normalised. Rax scales those weights by
    the padded width, ``lambda_loss`` by each list's valid items: the weights are rescaled to
    the valid count (a [B, 1] multiply) so that the values compare."""

    def lambdaweight(scores, labels, *, where, **kwargs):
        both = (
            functools.partial(rax.dcg_lambdaweight, normalize=True),
            functools.partial(rax.dcg2_lambdaweight, normalize=True),
        )
        weights = both[0](scores, labels, where=where, **kwargs) + mu * both[1](
            scores, labels, where=where, **kwargs
        )
        valid = jnp.sum(where, axis=-1, keepdims=True).astype(weights.dtype)  # Rax's pairs: [B, L * L]
        return weights * valid / scores.shape[-1]

    return lambda s, y, w: rax.pairwise_logistic_loss(s, y, where=w, lambdaweight_fn=lambdaweight)


def rax_approx_ndcg(rax):
    """``rax.approx_t12n(rax.ndcg_metric)`` plus 1 (Rax's loss is ``-NDCG``, ours ``1 - NDCG``,
    so that the values compare), called through ``ndcg_metric`` with approximate ranks:
    ``approx_t12n`` itself needs ``jax.util.wraps``, which JAX 0.10 no longer has."""
    step = jax.nn.sigmoid  # temperature 1
    rank_fn = functools.partial(rax.utils.approx_ranks, step_fn=step)
    cutoff_fn = functools.partial(rax.utils.approx_cutoff, step_fn=step)
    return lambda s, y, w: 1.0 - rax.ndcg_metric(s, y, where=w, rank_fn=rank_fn, cutoff_fn=cutoff_fn)


LABELS = ("ratings", "continuous")  # graded 1..5 (many ties); |standard normal| (no ties)


SAMPLED_PAIRS_MAX_ENTRIES = 2**28  # sample_pairs' [B, L, L] draw beyond this: see make_inputs


def make_inputs(batch: int, length: int, seed: int = 0, labels: str = "ratings"):
    """``(scores, labels, where, pairs)`` in NumPy: ``pairs_per_list`` sampled pairs per list
    besides the default call's three. The pairs come from the trainers' ``sample_pairs`` up to
    ``SAMPLED_PAIRS_MAX_ENTRIES`` entries of its [B, L, L] draw; beyond it (a minute of NumPy
    at (4096, 1000)) from uniform position pairs, each oriented by its labels, those with
    equal labels or an invalid item counting as nothing: the same shapes and work, since a
    call's time does not depend on which pairs it gathers."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(0.0, 1.0, (batch, length))
    if labels == "ratings":
        labels = rng.integers(1, 6, (batch, length)).astype(np.float64)
    else:  # |standard normal|: no ties, and >= 0 as softmax cross-entropy's labels must be
        labels = np.abs(rng.normal(0.0, 1.0, (batch, length)))
    where = rng.random((batch, length)) >= 0.1
    where[:, :2] = True
    per_list = TRAINER_DEFAULTS.pairs_per_list
    if batch * length * length <= SAMPLED_PAIRS_MAX_ENTRIES:
        pairs = sample_pairs(labels, where, pairs_per_list=per_list, rng=rng)
    else:
        first, second = rng.integers(0, length, (2, batch, per_list), dtype=np.int32)
        rows = np.arange(batch)[:, None]
        swap = labels[rows, first] < labels[rows, second]
        pairs = (
            np.repeat(np.arange(batch, dtype=np.int32), per_list),
            np.where(swap, second, first).reshape(-1),
            np.where(swap, first, second).reshape(-1),
        )
    return scores, labels, where, pairs


def _quartiles(times: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return q1, median, q3


def prepare_jax(impl: Impl, inputs, dtype: str, mode: str) -> dict:
    """Compile and warm up a JAX implementation: ``{"call", "compile_s", "memory_bytes", "value"}``,
    ``call()`` one blocking call."""
    scores, labels, where, pairs = inputs
    args = (jnp.asarray(scores, dtype), jnp.asarray(labels, dtype), jnp.asarray(where))
    if impl.trainer:
        args += (tuple(jnp.asarray(p) for p in pairs),)
    fn = impl.fn if mode == "forward" else jax.value_and_grad(impl.fn)
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()
    temp = getattr(memory, "temp_size_in_bytes", None) if memory is not None else None

    def call():
        return jax.block_until_ready(compiled(*args))

    for _ in range(2):
        out = call()
    value = out if mode == "forward" else out[0]
    return {"call": call, "compile_s": compile_s, "memory_bytes": temp, "value": float(value)}


TORCH_DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _torch_sync():
    if TORCH_DEVICE.type == "cuda":
        torch.cuda.synchronize()


def prepare_torch(impl: Impl, inputs, dtype: str, mode: str) -> dict:
    """``prepare_jax`` for a PyTorch implementation, on CUDA when there is one (torch.compile's
    compile time: the first call minus the median of the timed ones, filled in by
    ``time_cells``; memory: the peak CUDA allocation of a call over what was allocated
    before it, on CUDA only)."""
    scores, labels, where, pairs = inputs
    torch_dtype = getattr(torch, dtype)
    s = torch.tensor(scores, dtype=torch_dtype, device=TORCH_DEVICE)
    y = torch.tensor(labels, dtype=torch_dtype, device=TORCH_DEVICE)
    w = torch.tensor(where, device=TORCH_DEVICE)
    extra = ()
    if impl.trainer:
        extra = (tuple(torch.from_numpy(p).to(TORCH_DEVICE) for p in pairs),)
    fn = impl.fn
    if impl.compiled:
        torch._dynamo.reset()
        fn = torch.compile(impl.fn, dynamic=False)

    def call():
        if mode == "forward":
            with torch.no_grad():
                loss = fn(s, y, w, *extra)
        else:
            s.grad = None
            s.requires_grad_(True)
            loss = fn(s, y, w, *extra)
            loss.backward()
        _torch_sync()
        return loss

    start = time.perf_counter()
    value = call()
    first = time.perf_counter() - start
    memory = None
    if TORCH_DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        call()
        memory = torch.cuda.max_memory_allocated() - before
    call()
    return {"call": call, "first_s": first, "memory_bytes": memory, "value": float(value.detach())}


TURN_WARMUP_S = 0.05  # calls shorter than this get one untimed call at the start of each turn


def time_cells(impls: list[Impl], inputs, dtype: str, mode: str, runs: int) -> list[dict]:
    """Every implementation of one (loss, labels, B x L, dtype, mode) cell, prepared, then timed
    in turns: each of ``runs`` rounds times one call of every implementation, in an order
    rotated from round to round, so a slow spell of the shared machine falls on all of them
    alike and their ratios stay side by side. A turn of a call shorter than
    ``TURN_WARMUP_S`` starts with one untimed call: right after another framework's turn a
    first call is slower (measured: top-k ListMLE's JAX call at (1024, 200) took 11.0–11.6 ms
    timed cold in turns against 8.8–9.5 ms back to back, and 9.8–10.7 ms with the untimed
    call), which would charge the switch to whoever runs second. Returns each one's
    ``{"times", "compile_s", "memory_bytes", "value"}``, or ``{"failed": why}`` for one that
    could not be prepared or called (out of device memory, say), which then leaves the turns."""
    prepared: list[dict | None] = []
    failed: dict[int, str] = {}
    for index, impl in enumerate(impls):
        try:
            prepared.append(
                (prepare_jax if impl.framework == "jax" else prepare_torch)(impl, inputs, dtype, mode)
            )
        except (RuntimeError, MemoryError) as error:  # torch's and XLA's out-of-memory errors among them
            prepared.append(None)
            failed[index] = _failure(error)
    warm_turn = []
    for index, ready in enumerate(prepared):
        warm_turn.append(False)
        if ready is not None:
            start = time.perf_counter()
            _call_or_fail(ready, index, failed)
            warm_turn[-1] = time.perf_counter() - start < TURN_WARMUP_S
    times: list[list[float]] = [[] for _ in impls]
    for round_index in range(runs):
        for offset in range(len(impls)):
            k = (round_index + offset) % len(impls)
            if k in failed:
                continue
            if warm_turn[k]:
                _call_or_fail(prepared[k], k, failed)
            start = time.perf_counter()
            if _call_or_fail(prepared[k], k, failed):
                times[k].append(time.perf_counter() - start)
    results = []
    for index, (impl, ready, timed) in enumerate(zip(impls, prepared, times, strict=True)):
        if index in failed:
            results.append({"failed": failed[index]})
            continue
        compile_s = ready.get("compile_s")
        if impl.framework == "torch":
            compile_s = max(ready["first_s"] - statistics.median(timed), 0.0) if impl.compiled else None
        memory, value = ready["memory_bytes"], ready["value"]
        results.append({"times": timed, "compile_s": compile_s, "memory_bytes": memory, "value": value})
    return results


def _failure(error: BaseException) -> str:
    _release_device_memory()
    return f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}"


def _call_or_fail(ready: dict, index: int, failed: dict[int, str]) -> bool:
    """One call; an error (out of device memory, say) marks implementation ``index`` failed."""
    try:
        ready["call"]()
        return True
    except (RuntimeError, MemoryError) as error:
        failed[index] = _failure(error)
        return False


def _release_device_memory():
    if TORCH_DEVICE.type == "cuda":
        torch.cuda.empty_cache()


def skip_reason(impl: Impl, batch: int, length: int, dtype: str, args, labels: str = "ratings") -> str | None:
    if "levels" in impl.name and labels != "ratings":
        return "levels need graded labels"
    if dtype not in impl.dtypes:
        return f"not run in {dtype}"
    if impl.loop and batch * length > args.loop_max_items:
        return f"B*L > --loop-max-items {args.loop_max_items}"
    if impl.dense and batch * length * length > args.dense_max_pairs:
        return f"B*L^2 > --dense-max-pairs {args.dense_max_pairs:.0e}"
    return None


def run_grid(args, *, deadline: float | None = None, on_cell=None) -> list[dict]:
    """Every cell of ``args``' grid; with a ``deadline`` (``time.monotonic()``), cells not
    started by then are rows that say so. ``on_cell(rows)``, when given, sees the rows so far
    after each cell."""
    impls = [
        i
        for i in implementations()
        if i.loss in args.losses and (not args.implementations or i.name in args.implementations)
    ]
    cells = [
        (loss, batch, length, dtype, mode, labels)
        for labels in args.labels
        for batch, length in args.grid
        for dtype in args.dtypes
        for mode in args.modes
        for loss in dict.fromkeys(args.losses)  # each loss once, in the order given
    ]
    rows, references = [], {}
    for loss, batch, length, dtype, mode, labels in tqdm(
        cells, desc="benchmark", unit="cell", file=sys.stderr
    ):
        cell = {"labels": labels, "B": batch, "L": length, "dtype": dtype, "mode": mode}
        runnable = []
        out_of_time = deadline is not None and time.monotonic() > deadline
        for impl in (i for i in impls if i.loss == loss):
            reason = (
                "time budget spent" if out_of_time else skip_reason(impl, batch, length, dtype, args, labels)
            )
            if reason:
                rows.append(
                    {"loss": loss, "implementation": impl.name, "call": impl.call, **cell, "skipped": reason}
                )
            else:
                runnable.append(impl)
        if not runnable:
            continue
        inputs = make_inputs(batch, length, labels=labels)
        for impl, result in zip(runnable, time_cells(runnable, inputs, dtype, mode, args.runs), strict=True):
            head = {"loss": loss, "implementation": impl.name, "call": impl.call, **cell}
            if "failed" in result:
                rows.append({**head, "skipped": result["failed"]})
                continue
            q1, median, q3 = _quartiles(result["times"])
            if impl.name.startswith("torch eager"):
                references[(loss, impl.call, labels, batch, length, dtype, mode)] = result["value"]
            rows.append(
                {
                    **head,
                    "median_ms": median * 1e3,
                    "q1_ms": q1 * 1e3,
                    "q3_ms": q3 * 1e3,
                    "runs": len(result["times"]),
                    "compile_s": result["compile_s"],
                    "memory_mb": None if result["memory_bytes"] is None else result["memory_bytes"] / 2**20,
                    "value": result["value"],
                }
            )
        _release_device_memory()
        _compare_to_reference(rows, references)
        if on_cell is not None:
            on_cell(rows)
    return rows


def _compare_to_reference(rows: list[dict], references: dict) -> None:
    """``vs_ref``: each row's value against PyTorch eager's for the same call and cell."""
    for row in rows:
        key = (row["loss"], row["call"], row["labels"], row["B"], row["L"], row["dtype"], row["mode"])
        ref = references.get(key)
        if "value" in row and ref is not None:
            row["vs_ref"] = abs(row["value"] - ref) / max(abs(ref), 1e-30)


def _fmt(value, spec: str, missing: str = "–") -> str:
    return missing if value is None else format(value, spec)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| loss | implementation | labels | B x L | dtype | mode | median ms | IQR ms | compile s "
        "| XLA temp MB | vs ref |",
        "| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        size = f"{row['B']}x{row['L']}"
        head = f"| {row['loss']} | {row['implementation']} | {row['labels']} | {size} "
        head += f"| {row['dtype']} | {row['mode']} "
        if "skipped" in row:
            lines.append(head + f"| n/a | {row['skipped']} | | | |")
            continue
        lines.append(
            head + f"| {row['median_ms']:.2f} | {row['q1_ms']:.2f}–{row['q3_ms']:.2f} "
            f"| {_fmt(row['compile_s'], '.2f')} | {_fmt(row['memory_mb'], '.1f')} "
            f"| {_fmt(row.get('vs_ref'), '.1e')} |"
        )
    return "\n".join(lines)


def ratios(
    rows: list[dict], batch: int, length: int, dtype: str = "float32", labels: str = "ratings"
) -> list[str]:
    """Per loss, mode and call (default, trainer's) at (batch, length): every implementation's
    time over jax_ltr's ("jax", "jax trainer") and over its fastest."""
    lines = []
    for loss in LOSS_NAMES:
        for mode in MODES:
            for call in ("default", "trainer"):
                cell = [
                    r
                    for r in rows
                    if r["loss"] == loss
                    and r["call"] == call
                    and r["labels"] == labels
                    and r["B"] == batch
                    and r["L"] == length
                    and r["dtype"] == dtype
                    and r["mode"] == mode
                    and "median_ms" in r
                ]
                ours = [r for r in cell if r["implementation"].split()[0] == "jax"]
                if not ours:
                    continue
                default = [r for r in ours if r["implementation"] in ("jax", "jax trainer")]
                base = default[0] if default else min(ours, key=lambda r: r["median_ms"])
                others = ", ".join(
                    f"{r['implementation']} {r['median_ms'] / base['median_ms']:.2f}"
                    for r in sorted(cell, key=lambda r: r["median_ms"])
                    if r is not base
                )
                lines.append(
                    f"{loss} {mode} {batch}x{length} {dtype} {labels} labels, {call} call: "
                    f"{base['implementation']} {base['median_ms']:.2f} ms; "
                    f"time of the others over it: {others}"
                )
    return lines


def plot(rows: list[dict], dtype: str = "float32") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(loss, mode) for loss in LOSS_NAMES for mode in MODES]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (loss, mode) in zip(axes[0], panels, strict=True):
        cell = [
            r
            for r in rows
            if r["loss"] == loss and r["mode"] == mode and r["dtype"] == dtype and r["labels"] == "ratings"
        ]
        for name in sorted({r["implementation"] for r in cell}):
            points = sorted(
                (r["L"], r["median_ms"] * 1e3 / r["B"])
                for r in cell
                if r["implementation"] == name and "median_ms" in r
            )
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=name)
        ax.set(xscale="log", yscale="log", xlabel="list length L", ylabel="µs per list (median)")
        ax.set_title(f"{loss}, {mode}, {dtype}")
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def train_throughput(
    batch_sizes=(None,),
    *,
    synthetic: bool = False,
    epochs: int = 3,
    tasks=("retrieve",),
    ratings=None,
    models=(None,),
) -> list[dict]:
    """Lists/s of the JAX and PyTorch trainers over the same batches, epoch by epoch.

    Each task's default configuration for each model (None: the task's default model) at
    each batch size (None: the model's default), JAX's persistent compilation cache off: the
    first JAX epoch includes one compilation per batch width; later epochs are the steady
    state. Data: ML-100K, or with ``synthetic`` ``synthetic_ratings()`` (2,000 users, 20,000
    items, about 200,000 ratings), or the ``Ratings`` given, split the same way. A sequence
    model's "lists" are its users."""
    from ltr_common import load_split, temporal_split
    from ltr_common.config import for_task
    from ltr_common.synthetic import synthetic_ratings
    from ltr_common.tasks import make_task
    from ltr_train import make_backend

    rows = []
    for task, model, batch_size in ((t, m, b) for t in tasks for m in models for b in batch_sizes):
        given = {k: v for k, v in (("model", model), ("batch_size", batch_size)) if v is not None}
        config = for_task(task, compilation_cache=False, **given)
        data, used = "ml-100k", ratings
        if used is not None or synthetic:
            data = "synthetic" if used is None else used.source
            used = synthetic_ratings() if used is None else used
            split = temporal_split(used, max_list_size=config.max_list_size)
        else:
            used, split = load_split(config)
        for framework in ("jax", "torch"):
            trainer = make_backend(framework, config, used.num_users, used.num_items)
            for epoch in range(epochs):
                lists, metrics = 0, []
                start = time.perf_counter()
                for batch, pairs in make_task(config, split).epoch_inputs(epoch=epoch):
                    metrics.append(trainer.train_step(batch, pairs))
                    lists += int((batch.list_ids >= 0).sum())
                trainer.metrics_to_host(metrics)  # waits for the last step
                seconds = time.perf_counter() - start
                rows.append(
                    {
                        "data": data,
                        "task": task,
                        "model": config.model,
                        "batch_size": config.batch_size,
                        "framework": framework,
                        "epoch": epoch,
                        "seconds": seconds,
                        "lists_per_s": lists / seconds,
                    }
                )
    return rows


MAIN_JOB_RUNS = (("torch", "torch", False), ("jax cold", "jax", True), ("jax warm", "jax", False))


def main_job(tasks=("retrieve", "rerank"), *, work: Path) -> list[dict]:
    """``python scripts/train.py`` with the default configuration of each task, as a user runs
    it, side by side: PyTorch, then JAX with an empty compilation cache (cold), then JAX again
    with the cache the cold run left (warm). Each run is its own process; ``seconds`` is its
    wall time, start-up and imports included. ``epoch_seconds`` is the median of the epochs
    after the first (steps, host inputs, evaluation and checkpoints: the steady state), from
    the run's ``metrics.json``. The three runs train the same lists and must agree."""
    import subprocess

    from ltr_common import load_split
    from ltr_common.config import for_task
    from ltr_common.movielens import default_cache_dir

    load_split(for_task("rerank"))  # the ratings in the user's data cache, fetched if need be
    data_dir = os.environ.get("JAX_LTR_DATA_DIR") or str(default_cache_dir() / "ml-100k")
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    rows = []
    for task in tasks:
        cache = work / task / "cache"  # compiled programs only: empty before the cold run
        for label, framework, cold in MAIN_JOB_RUNS:
            if cold and cache.exists():
                raise SystemExit(f"--main-job: {cache} should not exist before the cold run")
            run_dir = work / task / label.replace(" ", "-")
            command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--framework", framework]
            command += ["--task", task, "--data_dir", data_dir, "--cache_dir", str(cache)]
            command += ["--run-dir", str(run_dir), "--no-progress"]
            start = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"--main-job: {' '.join(command)} failed:\n{done.stderr[-3000:]}")
            metrics = json.loads((run_dir / "metrics.json").read_text())
            rows.append(
                {
                    "task": task,
                    "run": label,
                    "seconds": seconds,
                    "epochs": len(metrics["epoch_seconds"]),
                    # after the first (compiling) epoch; a one-epoch run has only that one
                    "epoch_seconds": statistics.median(
                        metrics["epoch_seconds"][1:] or metrics["epoch_seconds"]
                    ),
                    "steps": metrics["steps"],
                    "test_ndcg@10": metrics["test"]["ndcg@10"],
                }
            )
            print(f"{task} {label}: {seconds:.1f} s", file=sys.stderr)
    return rows


def main_job_table(rows: list[dict]) -> str:
    lines = [
        "| task | run | wall s | vs torch | epochs | steady epoch ms | torch epoch / this | test ndcg@10 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        torch_row = next(r for r in rows if r["task"] == row["task"] and r["run"] == "torch")
        lines.append(
            f"| {row['task']} | {row['run']} | {row['seconds']:.1f} "
            f"| {row['seconds'] / torch_row['seconds']:.2f}x "
            f"| {row['epochs']} | {row['epoch_seconds'] * 1e3:.0f} "
            f"| {torch_row['epoch_seconds'] / row['epoch_seconds']:.2f}x | {row['test_ndcg@10']:.4f} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}; {os.cpu_count()} CPUs visible; JAX {jax.__version__} on {jax.devices()[0].platform}; "
        f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads)"
    )


def parse_grid(text: str) -> list[tuple[int, int]]:
    grid = []
    for part in text.split(","):
        try:
            batch, length = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--grid: expected BxL pairs like 1024x200, got {part!r}"
            ) from None
        if batch < 1 or length < 2:
            raise argparse.ArgumentTypeError(f"--grid: need B >= 1 and L >= 2, got {part!r}")
        grid.append((batch, length))
    return grid


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return sizes


def _choices(allowed):
    def parse(text: str) -> list[str]:
        values = text.split(",")
        bad = [v for v in values if v not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(allowed)}, got {bad}")
        return values

    return parse


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--grid", type=parse_grid, default=parse_grid(DEFAULT_GRID), help="BxL,...")
    parser.add_argument("--losses", type=_choices(LOSS_NAMES), default=list(LOSS_NAMES))
    parser.add_argument("--modes", type=_choices(MODES), default=list(MODES))
    parser.add_argument("--dtypes", type=_choices(("float32", "bfloat16")), default=["float32"])
    parser.add_argument("--labels", type=_choices(LABELS), default=list(LABELS), help="label kinds")
    parser.add_argument("--implementations", nargs="+", default=None, help="only these names")
    parser.add_argument("--runs", type=int, default=20, help="timed calls per cell (>= 2)")
    parser.add_argument("--loop-max-items", type=int, default=1024 * 200)
    parser.add_argument("--dense-max-pairs", type=float, default=2.6e8)
    parser.add_argument("--train", action="store_true", help="also time the trainers on ML-100K")
    parser.add_argument(
        "--train-batch-sizes",
        type=parse_sizes,
        default=[None],
        help="batch sizes for --train (1,2,...; default: each model's own)",
    )
    parser.add_argument("--train-synthetic", action="store_true", help="--train on synthetic data")
    parser.add_argument(
        "--train-tasks", type=_choices(("retrieve", "rerank")), default=["retrieve"], help="tasks for --train"
    )
    parser.add_argument(
        "--train-models",
        type=_choices(("default", *MODELS)),
        default=["default"],
        help="models for --train (default: each task's own)",
    )
    parser.add_argument(
        "--main-job",
        type=_choices(("retrieve", "rerank")),
        default=None,
        help="also time scripts/train.py with each task's defaults: torch, JAX cold, JAX warm",
    )
    parser.add_argument("--skip-grid", action="store_true", help="no loss grid (with --train, --main-job)")
    parser.add_argument("--out", type=Path, default=None, help="write benchmark.{csv,json,png} here")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error(f"--runs: need at least 2 timed calls, got {args.runs}")
    known = {i.name for i in implementations()}
    unknown = set(args.implementations or ()) - known
    if unknown:
        parser.error(f"--implementations: unknown {sorted(unknown)}; known: {sorted(known)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f"machine: {machine()}\n")
    rows = [] if args.skip_grid else run_grid(args)
    print(markdown(rows))
    print()
    for labels in args.labels:
        for batch, length in args.grid:
            for line in ratios(rows, batch, length, labels=labels):
                print(line)
    result = {"machine": machine(), "rows": rows}
    if args.train:
        models = [None if m == "default" else m for m in args.train_models]
        result["train"] = train_throughput(
            args.train_batch_sizes, synthetic=args.train_synthetic, tasks=args.train_tasks, models=models
        )
        print("\n| data | task | model | batch | trainer | epoch | seconds | lists/s |")
        print("| --- | --- | --- | ---: | --- | ---: | ---: | ---: |")
        for row in result["train"]:
            print(
                f"| {row['data']} | {row['task']} | {row['model']} | {row['batch_size']} "
                f"| {row['framework']} | {row['epoch']} "
                f"| {row['seconds']:.2f} | {row['lists_per_s']:.0f} |"
            )
    if args.main_job:
        import tempfile

        with tempfile.TemporaryDirectory() as work:
            result["main_job"] = main_job(args.main_job, work=Path(work))
        print("\n" + main_job_table(result["main_job"]))
    if args.out is not None:
        import pandas as pd

        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out / "benchmark.csv", pd.DataFrame(rows).to_csv(index=False))
        atomic_write_text(args.out / "benchmark.json", json.dumps(result, indent=2))
        atomic_write_bytes(args.out / "benchmark.png", plot(rows))
        print(f"\nwrote {args.out / 'benchmark.csv'}, .json and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
