"""The accelerator suite: the loss grid, ListMLE's two methods and both trainers on the device
JAX and PyTorch see (a GPU), side by side in one process, written up as ``docs/gpu.md``.

    bash scripts/accelerator_suite.sh [--wheels DIR] [--out docs/gpu.md] [--budget-s 420] [--tiny]

(the shell script installs the carried wheels without the network, then runs this). Sections,
in the order they run, each written out as soon as it ends, so a run stopped early still
leaves what it measured:

1. ListMLE's family and the pairwise family at (4096, 1000), float32, ratings: the default
   call and the trainer's call (sampled pairs), value + gradient, against
   PyTorch eager, torch.compile and Rax; ListMLE's ``method="scan"`` and ``"associative"``.
2. ListMLE's running sum alone at both sizes, in each way XLA could compute it
   (``ltr_bench.running_sums``: the two methods, ``lax.cumsum``, a blocked matmul).
3. Both trainers' epochs on each task (ML-100K; synthetic data where it is not at hand).
4. Every loss at (1024, 200), float32, ratings.
5. The ListMLE family on continuous labels at both sizes.
6. Every loss at both sizes in bfloat16, and the rest of (4096, 1000) float32.

Cells not started within ``--budget-s`` are rows that say so. Memory: XLA's temporary buffers
of a compiled JAX call, the peak CUDA allocation of a PyTorch call over its inputs, and the
process's peak device memory for each framework. ``--tiny``: the same sections on tiny cells
of ListMLE, pairwise PL and softmax, without torch.compile, and the trainers with the dot-product model
(the quickest to compile) on tiny synthetic data, for a machine without an accelerator (the
tests).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import torch

from ltr_bench.grid import GridOptions, grid_table, parse_grid, run_grid
from ltr_bench.registry import LOSS_NAMES
from ltr_bench.report import fmt
from ltr_bench.running_sums import running_sum_rows, running_sum_table
from ltr_bench.steps import train_throughput
from ltr_common.config import ArgumentParser
from ltr_common.files import atomic_write_text
from ltr_train import log_to_console
from ltr_train.cli import run_script

LISTMLE_FAMILY = ["listmle", "topk_listmle", "position_listmle"]
PAIRWISE_FAMILY = ["pairwise_pl", "hybrid", "lambdaloss"]
ALL_LOSSES = list(LOSS_NAMES)
COMPARED = ["jax", "torch eager", "torch.compile", "rax"]  # the ratio table's columns
IMPLEMENTATIONS = [
    *COMPARED,
    "jax trainer",
    "torch eager trainer",
    "torch.compile trainer",
    "jax scan",
    "jax associative",
]
SMALL, LARGE = "1024x200", "4096x1000"
TINY, TINY_LOSSES, TINY_MODEL = "3x7", ("listmle", "pairwise_pl", "softmax"), "dot"  # --tiny


def sections(tiny: bool) -> list[dict]:
    """The sections in the order they run, the most wanted first: a grid each (``grid_options``),
    or the trainers."""
    rest = [loss for loss in ALL_LOSSES if loss not in LISTMLE_FAMILY + PAIRWISE_FAMILY]
    if not tiny:
        return _sections(SMALL, LARGE, rest)
    # One tiny size and one loss per section, the first of TINY_LOSSES not already run with the
    # section's labels and dtype (every loss's section would repeat the ListMLE family's cell):
    # every section's code runs, and a section with nothing new is left out.
    chosen, run = [], set()
    for section in _sections(TINY, TINY, rest):
        if "losses" not in section:
            chosen.append(section)
            continue
        kind = (section.get("labels", "ratings"), section.get("dtypes", "float32"))
        new = [loss for loss in section["losses"] if loss in TINY_LOSSES and (loss, kind) not in run]
        if new:
            run.add((new[0], kind))
            chosen.append(section | {"losses": new[:1]})
    return chosen


def _sections(small: str, large: str, rest: list[str]) -> list[dict]:
    return [
        {"title": f"The ListMLE family at {large}", "grid": large, "losses": LISTMLE_FAMILY},
        {"title": f"The pairwise family at {large}", "grid": large, "losses": PAIRWISE_FAMILY},
        {"title": "running sums", "grid": ",".join(dict.fromkeys((small, large)))},
        {"title": "trainers"},
        {"title": f"Every loss at {small}", "grid": small, "losses": ALL_LOSSES},
        {
            "title": "The ListMLE family on continuous labels",
            "grid": ",".join(dict.fromkeys((small, large))),
            "losses": LISTMLE_FAMILY,
            "labels": "continuous",
        },
        {
            "title": "Every loss in bfloat16",
            "grid": ",".join(dict.fromkeys((small, large))),
            "losses": ALL_LOSSES,
            "dtypes": "bfloat16",
        },
        {"title": f"The other losses at {large}", "grid": large, "losses": rest},
    ]


# A short call's turn starts with one untimed call, as in the suite's one H200 run
# (docs/gpu.md), not the CPU grid's 30 ms of them: at 10 rounds of about nine implementations
# a cell, 30 ms a turn would take some 2.7 s of the budget per cell, and the effect the CPU
# warm-up answers (a 2-core VM's memory, slow for some milliseconds after the other
# framework's turn; docs/performance.md) is not measured on a GPU.
SUITE_WARM_UP_S = 0.0


def grid_options(section: dict, *, runs: int, tiny: bool) -> GridOptions:
    """The loss grid of ``section``: value + gradient of its losses, ``runs`` rounds a cell."""
    names = [n for n in IMPLEMENTATIONS if not (tiny and n.startswith("torch.compile"))]
    # The dense [B, L, L] forms (PyTorch's all-pairs losses, Rax's pairwise ones) up to
    # (1024, 1000): at (4096, 1000) one such float32 array is 16 GiB, and PyTorch's pairwise
    # loss alone asked for more than the 140 GiB device had left beside JAX's buffers.
    return GridOptions(
        grid=parse_grid(section["grid"]),
        losses=tuple(section["losses"]),
        modes=("forward+backward",),
        dtypes=(section.get("dtypes", "float32"),),
        labels=(section.get("labels", "ratings"),),
        implementations=tuple(names),
        runs=runs,
        dense_max_pairs=1.1e9,
        warm_up_s=SUITE_WARM_UP_S,
    )


def _cell(rows, **match):
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def ratio_table(rows: list[dict]) -> list[str]:
    """One line per (loss, call, labels, size, dtype): jax_ltr's time, each other
    implementation's time and its ratio to jax_ltr's (larger: jax_ltr faster)."""
    lines = [
        "| loss | call | labels | B x L | dtype | jax_ltr | PyTorch eager | torch.compile | Rax "
        "| JAX temp MB | PyTorch peak MB |",
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    keys = dict.fromkeys(
        (r["loss"], r["call"], r["labels"], r["B"], r["L"], r["dtype"])
        for r in rows
        if r["implementation"] in ("jax", "jax trainer")
    )
    for loss, call, labels, batch, length, dtype in keys:
        cell = _cell(rows, loss=loss, call=call, labels=labels, B=batch, L=length, dtype=dtype)
        suffix = " trainer" if call == "trainer" else ""
        by_name = {r["implementation"].removesuffix(suffix): r for r in cell}
        ours = by_name.get("jax", {})
        if "median_ms" not in ours:
            lines.append(
                f"| {loss} | {call} | {labels} | {batch}x{length} | {dtype} | {ours.get('skipped', 'n/a')} "
                "| | | | | |"
            )
            continue
        shown = []
        for name in COMPARED[1:]:
            other = by_name.get(name)
            if other is None:
                shown.append("–")
            elif "median_ms" not in other:
                shown.append(f"n/a ({other['skipped']})")
            else:
                shown.append(f"{other['median_ms']:.3g} ms ({other['median_ms'] / ours['median_ms']:.2f}x)")
        torch_memory = by_name.get("torch eager", {}).get("memory_mb")
        lines.append(
            f"| {loss} | {call} | {labels} | {batch}x{length} | {dtype} | {ours['median_ms']:.3g} ms "
            f"| {' | '.join(shown)} | {fmt(ours.get('memory_mb'), '.1f')} "
            f"| {fmt(torch_memory, '.1f')} |"
        )
    return lines


def method_choice(rows: list[dict]) -> tuple[list[str], dict]:
    """ListMLE's two suffix log-sum-exp methods side by side (default call, value + gradient):
    a table, and ``{"faster": method, "cells": n}``: the method faster in most cells."""
    lines = [
        "| labels | B x L | dtype | scan ms | associative ms | associative / scan |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    wins = {"scan": 0, "associative": 0}
    scans = [r for r in rows if r["implementation"] == "jax scan" and "median_ms" in r]
    for scan in scans:
        match = {k: scan[k] for k in ("loss", "labels", "B", "L", "dtype", "mode")}
        other = [r for r in _cell(rows, implementation="jax associative", **match) if "median_ms" in r]
        if not other:
            continue
        ratio = other[0]["median_ms"] / scan["median_ms"]
        wins["associative" if ratio < 1 else "scan"] += 1
        lines.append(
            f"| {scan['labels']} | {scan['B']}x{scan['L']} | {scan['dtype']} | {scan['median_ms']:.3g} "
            f"| {other[0]['median_ms']:.3g} | {ratio:.2f} |"
        )
    faster = max(wins, key=wins.get) if any(wins.values()) else None
    return lines, {"faster": faster, "cells": sum(wins.values()), "wins": wins}


def trainer_table(train_rows: list[dict]) -> list[str]:
    lines = [
        "| data | task | model | batch | JAX steady epoch s | PyTorch steady epoch s | PyTorch / JAX "
        "| JAX first epoch s | PyTorch first epoch s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    keys = ("data", "task", "model", "batch_size")
    for key in dict.fromkeys(tuple(r.get(k) for k in keys) for r in train_rows):
        match = dict(zip(keys, key, strict=True))
        times = {}
        for framework in ("jax", "torch"):
            epochs = [r["seconds"] for r in _cell(train_rows, **match, framework=framework)]
            times[framework] = (epochs[0], statistics.median(epochs[1:] or epochs))
        lines.append(
            f"| {' | '.join(str(v) for v in key)} | {times['jax'][1]:.3f} | {times['torch'][1]:.3f} "
            f"| {times['torch'][1] / times['jax'][1]:.2f}x | {times['jax'][0]:.2f} "
            f"| {times['torch'][0]:.2f} |"
        )
    return lines


def peak_memory() -> dict:
    """Each framework's peak device memory in this process, in MiB (None: not reported)."""
    stats = jax.devices()[0].memory_stats() or {}
    jax_peak = stats.get("peak_bytes_in_use")
    torch_peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    return {k: None if v is None else v / 2**20 for k, v in (("jax", jax_peak), ("torch", torch_peak))}


def device_name() -> str:
    device = jax.devices()[0]
    name = getattr(device, "device_kind", device.platform)
    if torch.cuda.is_available():
        name += f" (PyTorch: {torch.cuda.get_device_name()})"
    return f"{name}, JAX {jax.__version__} on {device.platform}, PyTorch {torch.__version__}"


def report(state: dict) -> str:
    """docs/gpu.md from what has been measured so far."""
    out = [
        f"# Accelerator suite: {state['device']}",
        "",
        f"Written by `bash scripts/accelerator_suite.sh{' --tiny' if state['tiny'] else ''} "
        f"--budget-s {state['budget_s']:.0f}` on {state['date']} ({state['elapsed_s']:.0f} s so far). "
        "Value + gradient of each call, timed in turns (`scripts/benchmark.py`: each round "
        f"times one call of every implementation, in rotated order, a short call's turn after "
        f"one untimed call; {state['runs']} rounds; median). "
        "Ratios are the other implementation's time over jax_ltr's: above 1, jax_ltr is faster. "
        '"default" is each loss\'s call without sampled pairs; "trainer" the trainers\' own call '
        "where it differs (`training_objective`, 32 sampled pairs per list; a random tie order is "
        "a shuffle of each list on the host). Labels: ratings 1..5 or |standard normal| "
        "(continuous); 10% of items masked. "
        "JAX temp MB: XLA's temporary buffers of the compiled call; PyTorch peak MB: the peak CUDA "
        "allocation of an eager call over its inputs.",
        "",
    ]
    for title, rows in state["grids"]:
        out += [f"## {title}", "", *ratio_table(rows), ""]
    all_rows = [r for _, rows in state["grids"] for r in rows]
    lines, choice = method_choice(all_rows)
    out += ['## ListMLE\'s suffix log-sum-exp: `method="scan"` against `"associative"`', "", *lines, ""]
    if choice["faster"]:
        out += [
            f'Faster in most cells ({choice["wins"]}): **{choice["faster"]}** — what `method="auto"` '
            f"should pick on {jax.devices()[0].platform}.",
            "",
        ]
    if state.get("running_sums"):
        out += [
            "## ListMLE's running sum alone, each way XLA could compute it",
            "",
            "Forward `sum(log1p(S))` over the suffix sums `S` of each list's shares `exp(s - max)`, "
            "lists one per column as in the loss, float32, timed in turns "
            "(`ltr_bench.running_sums`: `scan` and `associative` are `jax_ltr`'s methods; "
            "`lax.cumsum` and a blocked matmul are candidates). Error: the largest relative "
            "error of `S` against a float64 sum.",
            "",
            *running_sum_table(state["running_sums"]),
            "",
        ]
    if state.get("train"):
        out += [
            "## Trainers: epochs of each task's default configuration"
            + (f" (--tiny: the {TINY_MODEL} model)" if state["tiny"] else ""),
            "",
            *trainer_table(state["train"]),
            "",
        ]
        out += [
            "Steady epoch: the median of the epochs after the first (the first compiles each batch width "
            "for JAX; PyTorch's first epoch warms CUDA up).",
            "",
        ]
    memory = peak_memory()
    out += [
        "## Peak device memory of the whole run",
        "",
        f"JAX {fmt(memory['jax'], '.0f')} MiB, PyTorch {fmt(memory['torch'], '.0f')} MiB.",
        "",
        "## Every row",
        "",
        grid_table(all_rows),
        "",
    ]
    return "\n".join(out)


def parse_args(argv):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out", type=Path, default=Path("docs/gpu.md"), help="the report (default docs/gpu.md)"
    )
    parser.add_argument(
        "--budget-s", type=float, default=420.0, help="seconds for the whole suite (default 420)"
    )
    parser.add_argument("--runs", type=int, default=10, help="timed rounds per cell (default 10)")
    parser.add_argument(
        "--tiny", action="store_true", help="a few tiny cells, no torch.compile: for the tests"
    )
    parser.add_argument("--allow-cpu", action="store_true", help="run even when JAX sees no accelerator")
    args = parser.parse_args(argv)
    if args.budget_s <= 0:
        parser.error(f"--budget-s: need a positive number of seconds, got {args.budget_s}")
    if args.runs < 2:
        parser.error(f"--runs: need at least 2 timed calls, got {args.runs}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    if jax.default_backend() == "cpu" and not (args.tiny or args.allow_cpu):
        print(
            "accelerator_suite: JAX sees no accelerator (give --tiny or --allow-cpu to run on the CPU)",
            file=sys.stderr,
        )
        return 1
    state = {
        "device": device_name(),
        "tiny": args.tiny,
        "budget_s": args.budget_s,
        "runs": args.runs,
        "date": datetime.date.today().isoformat(),
        "grids": [],
        "running_sums": [],
        "train": [],
    }
    deadline = start + args.budget_s
    train_reserve = 0.25 * args.budget_s  # the trainers' section starts no later than this before the end

    def write():
        state["elapsed_s"] = time.monotonic() - start
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, report(state))
        raw = {k: v for k, v in state.items() if k != "grids"}
        raw["grids"] = [{"title": title, "rows": rows} for title, rows in state["grids"]]
        atomic_write_text(args.out.with_suffix(".json"), json.dumps(raw, indent=1, default=str))

    trained = False
    for section in sections(args.tiny):
        if section["title"] == "running sums":
            state["running_sums"] = running_sum_rows(
                parse_grid(section["grid"]), runs=args.runs, deadline=deadline - train_reserve
            )
        elif section["title"] == "trainers":
            trained = True
            data = None
            if args.tiny or not _movielens_at_hand():
                from ltr_common.synthetic import synthetic_ratings

                data = (
                    synthetic_ratings(60, 300, median_ratings=20, min_ratings=12, max_ratings=60, seed=0)
                    if args.tiny
                    else synthetic_ratings()
                )
            state["train"] = train_throughput(
                tasks=("retrieve", "rerank"),
                epochs=2 if args.tiny else 3,
                ratings=data,
                models=(TINY_MODEL if args.tiny else None,),
            )
        else:
            options = grid_options(section, runs=args.runs, tiny=args.tiny)
            section_deadline = deadline if trained else deadline - train_reserve
            state["grids"].append((section["title"], []))

            def on_cell(rows, title=section["title"]):  # each cell written out as it ends
                state["grids"][-1] = (title, rows)
                write()

            rows = run_grid(options, deadline=section_deadline, on_cell=on_cell)
            state["grids"][-1] = (section["title"], rows)
        write()
        print(
            f"accelerator_suite: {section['title']} done at {time.monotonic() - start:.0f} s", file=sys.stderr
        )
    print(f"accelerator_suite: wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


def _movielens_at_hand() -> bool:
    """ML-100K without the network: a data folder or the cache already holds it."""
    from ltr_common.movielens import default_cache_dir

    folder = os.environ.get("JAX_LTR_DATA_DIR")
    return (
        bool(folder and (Path(folder) / "u.data").exists())
        or (default_cache_dir() / "ml-100k" / "u.data").exists()
    )


if __name__ == "__main__":
    log_to_console()
    sys.exit(run_script(main))
