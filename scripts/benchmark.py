"""Benchmark jax_ltr against PyTorch in three jobs, each a module of ``ltr_bench``:

1. The loss grid (``ltr_bench.grid``; ``--skip-grid`` leaves it out): every JAX method
   against PyTorch eager, torch.compile, the original per-row Python loop and Rax, on the
   same inputs. Each cell (loss, labels, B x L, dtype, mode) compiles and warms up every
   implementation; then ``--runs`` rounds each time one call of every implementation (JAX:
   ``block_until_ready``), in an order rotated from round to round and after 30 ms of
   untimed calls for calls under 50 ms (``ltr_bench.timing``), so the implementations
   share the machine's slow spells and their ratios are side by side; the median and the
   interquartile range are reported, with the compile time (first call, or XLA's
   lower+compile) apart. Inputs are arguments of the compiled function, never constants
   closed over. Labels are ratings 1..5 (or continuous, see ``--labels``) with 10% of the
   items masked; "vs ref" is the largest relative difference of the value from PyTorch
   eager's on the same inputs, so every row is shown to do the same work. Memory: XLA's
   compiled temporary buffers for JAX rows (the live scratch of the program); not measured
   for PyTorch on CPU. Cells that cannot run say why (``n/a``): the original loop beyond
   ``--loop-max-items`` items, dense [B, L, L] implementations beyond ``--dense-max-pairs``.
2. The trainers' steps (``--train``, ``ltr_bench.steps``): lists/s of both trainers over the
   same batches of each task's default configuration, epoch by epoch.
3. The main job (``--main-job``, ``ltr_bench.main_job``): ``scripts/train.py`` with each
   task's defaults, PyTorch, then JAX with an empty compilation cache, then JAX warm.

    python scripts/benchmark.py [--quick] [--grid 64x50,1024x200] [--losses listmle,hybrid]
                                [--implementations NAME ...] [--runs 20] [--train]
                                [--main-job retrieve,rerank] [--skip-grid] [--out DIR]

``--out DIR`` writes ``benchmark.csv``, ``benchmark.json`` and ``benchmark.png`` (time per
list against L, log-log, a line per implementation; one panel per loss and mode).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from ltr_bench.grid import (
    GridOptions,
    grid_table,
    grid_text,
    not_installed,
    parse_grid,
    plot,
    ratios,
    run_grid,
)
from ltr_bench.main_job import main_job_table, run_main_job
from ltr_bench.registry import DTYPES, LABELS, LOSS_NAMES, MODES, implementation_names
from ltr_bench.report import machine, write_results
from ltr_bench.steps import DEFAULT_TASKS, steps_table, train_throughput
from ltr_common.config import TASKS, ArgumentParser
from ltr_common.models import MODELS
from ltr_train import log_to_console
from ltr_train.cli import ensure_folder_or_exit, run_script

GRID_DEFAULTS = GridOptions()

# --quick: about a minute on a 2-core CPU (47 s on the quiet 2-core VM of docs/benchmark.md,
# 78 s beside another job). One cell, four kinds of work (ListMLE's scan, the softmax's
# single pass, pairwise PL's pairs, ApproxNDCG's all-pairs ranks), jax_ltr against PyTorch
# eager in the default call and the trainers' call, value and gradient; then the steps of the
# task whose default model trains fastest. Values are as they would be typed; options given
# beside --quick win.
QUICK = {
    "grid": "1024x200",
    "losses": "listmle,softmax,pairwise_pl,approx_ndcg",
    "modes": "forward+backward",
    "labels": "ratings",
    "implementations": ["jax", "torch eager", "jax trainer", "torch eager trainer"],
    "runs": "10",
    "train": True,
    "train_tasks": "rerank",
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"machine: {machine()}\n")
    rows = [] if args.skip_grid else run_grid(args.grid_options)
    print(grid_table(rows))
    print()
    for labels in args.labels:
        for batch, length in args.grid:
            for line in ratios(rows, batch, length, labels=labels):
                print(line)
    result = {"machine": machine(), "rows": rows}
    if args.train:
        result["train"] = train_throughput(
            args.train_batch_sizes or [None],
            synthetic=args.train_synthetic,
            tasks=args.train_tasks,
            models=[None if m == "default" else m for m in args.train_models],
            unpacked=args.train_unpacked,
        )
        print("\n" + steps_table(result["train"]))
    if args.main_job:
        result["main_job"] = run_main_job(args.main_job)
        print("\n" + main_job_table(result["main_job"]))
    if args.out is not None:
        csv_path = write_results(args.out, result, plot(rows))[0]
        print(f"\nwrote {csv_path}, .json and .png")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options of ``argv``: each as given, else as ``--quick``'s preset sets it (when
    ``--quick`` is given), else its default; ``grid_options`` gathers the grid's."""
    parser = build_parser()
    if parser.parse_known_args(argv)[0].quick:
        parser.set_defaults(**QUICK)  # string defaults go through the option's type, as typed
    args = parser.parse_args(argv)
    fields = {field.name: getattr(args, field.name) for field in dataclasses.fields(GridOptions)}
    try:
        args.grid_options = GridOptions(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        )
    except ValueError as error:
        parser.error(str(error))
    if args.out is not None:  # made now: a long run must not find it cannot write at its end
        missing = not_installed(["matplotlib"], "bench")
        if missing:
            parser.error(f"--out: its plot needs matplotlib: {missing}")
        ensure_folder_or_exit(parser, args.out, "--out")
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"about a minute on a 2-core CPU, as if given {preset_flags(QUICK)}; "
        "options given beside it override these (the main job too runs only when asked)",
    )
    grid = parser.add_argument_group("the loss grid")
    grid.add_argument("--skip-grid", action="store_true", help="no loss grid (with --train, --main-job)")
    grid.add_argument(
        "--grid",
        type=argument_type(parse_grid),
        default=grid_text(GRID_DEFAULTS.grid),
        metavar="BxL,...",
        help="list sizes: lists per batch x items per list",
    )
    for flag, allowed in (
        ("--losses", LOSS_NAMES),
        ("--modes", MODES),
        ("--dtypes", DTYPES),
        ("--labels", LABELS),
    ):
        default = ",".join(getattr(GRID_DEFAULTS, flag.removeprefix("--")))
        grid.add_argument(
            flag,
            type=comma_list(allowed),
            default=default,
            metavar="A,B,...",
            help=f"any of {', '.join(allowed)}",
        )
    grid.add_argument(
        "--implementations",
        nargs="+",
        default=GRID_DEFAULTS.implementations,
        metavar="NAME",
        help="time only these (none: every one), each for the losses it has; any of: "
        + ", ".join(shlex.quote(name) for name in implementation_names()),
    )
    grid.add_argument(
        "--runs", type=int, default=GRID_DEFAULTS.runs, metavar="N", help="timed calls per cell (>= 2)"
    )
    grid.add_argument(
        "--loop-max-items",
        type=int,
        metavar="N",
        default=GRID_DEFAULTS.loop_max_items,
        help="the original loop's largest B * L",
    )
    grid.add_argument(
        "--dense-max-pairs",
        type=float,
        metavar="N",
        default=GRID_DEFAULTS.dense_max_pairs,
        help="the largest B * L * L of an implementation that builds [B, L, L] arrays",
    )
    grid.add_argument(
        "--warm-up-s",
        type=float,
        metavar="S",
        default=GRID_DEFAULTS.warm_up_s,
        help="untimed calls, for at least this long, at the start of each turn of a call under "
        "50 ms (0: one untimed call)",
    )
    steps = parser.add_argument_group("the trainers' steps")
    steps.add_argument(
        "--train",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="time both trainers' epochs on ML-100K",
    )
    steps.add_argument(
        "--train-batch-sizes",
        type=batch_sizes,
        default=None,
        metavar="B,...",
        help="batch sizes (none: each model's own)",
    )
    steps.add_argument("--train-synthetic", action="store_true", help="--train on synthetic data")
    steps.add_argument(
        "--train-unpacked",
        action="store_true",
        help="--train: time the JAX sequence trainer on unpacked batches too (one user a row)",
    )
    steps.add_argument(
        "--train-tasks",
        type=comma_list(TASKS),
        metavar="A,B,...",
        default=",".join(DEFAULT_TASKS),
        help=f"any of {', '.join(TASKS)}",
    )
    steps.add_argument(
        "--train-models",
        type=comma_list(("default", *MODELS)),
        metavar="A,B,...",
        default="default",
        help=f"any of default (each task's own), {', '.join(MODELS)}",
    )
    main_job = parser.add_argument_group("the main job")
    main_job.add_argument(
        "--main-job",
        type=comma_list(TASKS),
        metavar="A,B,...",
        default=None,
        help="time scripts/train.py with these tasks' defaults: torch, JAX cold, JAX warm "
        f"(none: not run); any of {', '.join(TASKS)}",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="write benchmark.{csv,json,png} in this folder"
    )
    return parser


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The description as written, and every option's default after its help."""


def preset_flags(preset: dict) -> str:
    """``preset`` as the flags that give it: ``{"runs": "5", "train": True}``: ``--runs 5 --train``."""
    flags = []
    for dest, value in preset.items():
        flags.append("--" + dest.replace("_", "-"))
        if isinstance(value, list):
            flags += [shlex.quote(v) for v in value]
        elif value is not True:
            flags.append(value)
    return " ".join(flags)


def argument_type(parse):
    """``parse`` as an option's type: the ValueError it raises is the option's error."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def comma_list(allowed):
    """An option's type: a comma list of ``allowed`` values."""

    def parse(text: str) -> list[str]:
        values = text.split(",")
        bad = [v for v in values if v not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(allowed)}, got {bad}")
        return values

    return parse


def batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return sizes


if __name__ == "__main__":
    log_to_console()
    sys.exit(run_script(main))
