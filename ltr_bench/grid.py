"""The loss grid: value (and gradient) of every loss, implementation by implementation, cell by
cell (loss, label kind, B x L, dtype, mode), on the same inputs.

Each cell compiles and warms up every implementation, then times them in turns
(``ltr_bench.timing.time_cells``); the median and the interquartile range are reported, with
the compile time (first call, or XLA's lower+compile) apart. Labels are ratings 1..5 or
continuous with 10% of the items masked; "vs ref" is the largest relative difference of the
value from PyTorch eager's on the same inputs, so every row is shown to do the same work.
Cells that cannot run say why (``n/a``): the original loop beyond ``loop_max_items`` items,
dense [B, L, L] implementations beyond ``dense_max_pairs``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import sys
import time

import numpy as np
from tqdm import tqdm

from ltr_bench.registry import (
    LABELS,
    LOSS_NAMES,
    MODES,
    TRAINER_DEFAULTS,
    Impl,
    implementation_names,
    implementations,
)
from ltr_bench.report import fmt
from ltr_bench.timing import WARM_UP_FOR_S, check_warm_up_s, quartiles, release_device_memory, time_cells
from ltr_common.pairs import sample_pairs


@dataclasses.dataclass(frozen=True)
class GridOptions:
    """Which cells the grid times and how: each field is the command line's option of the same
    name (``--loop-max-items`` for ``loop_max_items``), whose default is the field's."""

    grid: tuple[tuple[int, int], ...] = ((64, 50), (256, 200), (1024, 200), (1024, 1000), (64, 2000))
    losses: tuple[str, ...] = LOSS_NAMES
    modes: tuple[str, ...] = MODES
    dtypes: tuple[str, ...] = ("float32",)
    labels: tuple[str, ...] = LABELS
    implementations: tuple[str, ...] | None = None  # None: every one
    runs: int = 20  # timed rounds per cell
    loop_max_items: int = 1024 * 200  # the original loop's largest B * L
    dense_max_pairs: float = 2.6e8  # a dense [B, L, L] implementation's largest B * L * L
    warm_up_s: float = WARM_UP_FOR_S  # untimed calls at the start of a short call's turn

    def __post_init__(self):
        if self.runs < 2:
            raise ValueError(f"--runs: need at least 2 timed calls, got {self.runs}")
        check_warm_up_s(self.warm_up_s, "--warm-up-s")
        known = set(implementation_names())
        unknown = set(self.implementations or ()) - known
        if unknown:
            missing = not_installed(["rax"], "bench")
            if "rax" in unknown and missing:  # Rax's rows are there only where Rax is installed
                raise ValueError(f"--implementations: rax needs Rax: {missing}")
            raise ValueError(f"--implementations: unknown {sorted(unknown)}; known: {sorted(known)}")


def not_installed(packages, extra: str) -> str | None:
    """What to say where any of ``packages`` (module names) is not installed: which, and the
    project's extra that installs them; None where all are.

    Example:
      >>> not_installed(["json"], "bench") is None
      True
    """
    missing = sorted({p for p in packages if importlib.util.find_spec(p) is None})
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return f"{', '.join(missing)} {verb} not installed: pip install -e '.[{extra}]'"


def parse_grid(text: str) -> tuple[tuple[int, int], ...]:
    """``"64x50,1024x200"`` as ``((64, 50), (1024, 200))``: (B, L) pairs, B >= 1 and L >= 2.

    Example:
      >>> parse_grid("64x50,1024x200")
      ((64, 50), (1024, 200))
      >>> grid_text(parse_grid("64x50,1024x200"))
      '64x50,1024x200'
    """
    grid = []
    for part in text.split(","):
        try:
            batch, length = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise ValueError(f"expected BxL pairs like 1024x200, got {part!r}") from None
        if batch < 1 or length < 2:
            raise ValueError(f"need B >= 1 and L >= 2, got {part!r}")
        grid.append((batch, length))
    return tuple(grid)


def grid_text(grid: tuple[tuple[int, int], ...]) -> str:
    """``parse_grid``'s inverse: ``((64, 50), (1024, 200))`` as ``"64x50,1024x200"``."""
    return ",".join(f"{batch}x{length}" for batch, length in grid)


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


def skip_reason(
    impl: Impl, batch: int, length: int, dtype: str, options: GridOptions, labels: str = "ratings"
) -> str | None:
    """Why ``impl`` does not run in this cell, or None when it does."""
    if "levels" in impl.name and labels != "ratings":
        return "levels need graded labels"
    if dtype not in impl.dtypes:
        return f"not run in {dtype}"
    if impl.loop and batch * length > options.loop_max_items:
        return f"B*L > --loop-max-items {options.loop_max_items}"
    if impl.dense and batch * length * length > options.dense_max_pairs:
        return f"B*L^2 > --dense-max-pairs {options.dense_max_pairs:.0e}"
    return None


def run_grid(options: GridOptions, *, deadline: float | None = None, on_cell=None) -> list[dict]:
    """Every cell of ``options``' grid, a row per implementation; with a ``deadline``
    (``time.monotonic()``), cells not started by then are rows that say so. ``on_cell(rows)``,
    when given, sees the rows so far after each cell."""
    impls = [
        i
        for i in implementations()
        if i.loss in options.losses and (not options.implementations or i.name in options.implementations)
    ]
    cells = [
        (loss, batch, length, dtype, mode, labels)
        for labels in options.labels
        for batch, length in options.grid
        for dtype in options.dtypes
        for mode in options.modes
        for loss in dict.fromkeys(options.losses)  # each loss once, in the order given
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
                "time budget spent"
                if out_of_time
                else skip_reason(impl, batch, length, dtype, options, labels)
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
        for impl, result in zip(
            runnable, time_cells(runnable, inputs, dtype, mode, options.runs, options.warm_up_s), strict=True
        ):
            head = {"loss": loss, "implementation": impl.name, "call": impl.call, **cell}
            if "failed" in result:
                rows.append({**head, "skipped": result["failed"]})
                continue
            q1, median, q3 = quartiles(result["times"])
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
        release_device_memory()
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


def grid_table(rows: list[dict]) -> str:
    """The grid's rows as a markdown table, a line per row (``n/a`` and why for one not run)."""
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
            f"| {fmt(row['compile_s'], '.2f')} | {fmt(row['memory_mb'], '.1f')} "
            f"| {fmt(row.get('vs_ref'), '.1e')} |"
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
    """A PNG of the time per list against L, log-log, a line per implementation; one panel per
    loss and mode (ratings labels, ``dtype``)."""
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
