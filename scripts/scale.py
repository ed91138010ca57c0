"""Time and memory of a training epoch and a full-catalog evaluation at MovieLens' sizes,
and of reading an interaction table of your own.

    python scripts/scale.py --sizes ml-100k,ml-1m,ml-20m [--model dot] [--out DIR]
    python scripts/scale.py --tables 5000000,20000000 [--out DIR]

Each size runs in a process of its own, so that its peak resident memory is its own:

* ``ml-100k``: the real ratings;
* ``ml-1m``, ``ml-20m``: the real release when it is cached or in ``--data_dir`` (``--real``),
  else ``ltr_common.synthetic`` ratings in its shape (users, rated items, ratings per user:
  median and range) — 6,040 x 3,706 with about 1.0M ratings, 138,493 x 26,744 with about 20M.

Measured, in that process: the data (made or read, then split), two training epochs (the
first compiles the step, the second is steady), two evaluations of every user's validation
list against the whole catalog (``RetrieveTask.evaluate``: users scored in chunks, never a
[users, items] array; the first compiles), and the peak resident memory (``getrusage``).
``--out`` gets ``scale.json`` and ``scale.md``.

``--tables N,...``: for each N, a CSV of N interactions (user, item, rating, timestamp; ML-20M's
users and items, drawn uniformly, no pair twice) written to a temporary folder, once plain
and once with every field quoted, each read by ``ltr_common.interactions.read_interactions``
in a process of its own: its seconds and peak resident memory (``--out``: ``tables.json``
and ``tables.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from ltr_common.config import ArgumentParser

SHAPES = {  # users, items, median / min / max ratings per user (the releases' own)
    "ml-1m": (6_040, 3_706, 100, 20, 2_314),
    "ml-20m": (138_493, 26_744, 88, 20, 9_254),
}
SIZES = ("ml-100k", *SHAPES)


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def measure(size: str, *, model: str, framework: str, real: bool, batch_size: int | None) -> dict:
    """One size's numbers, in this process."""
    from ltr_common.config import SELECTION_METRIC, for_task
    from ltr_common.data import load_ratings, split_ratings
    from ltr_common.synthetic import synthetic_ratings
    from ltr_train import configure, fit_batch_size, make_backend

    overrides = {"model": model, "epochs": 1}
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    if size == "ml-100k" or real:
        overrides["dataset"] = size
    config = for_task("retrieve", **overrides)
    configure(framework, config)
    started = time.perf_counter()
    if size == "ml-100k" or real:
        ratings, source = load_ratings(config), size
    else:
        users, items, median, low, high = SHAPES[size]
        ratings = synthetic_ratings(
            users, items, median_ratings=median, min_ratings=low, max_ratings=high, seed=0
        )
        source = f"synthetic, {size}'s shape"
    split = split_ratings(ratings, config)
    data_seconds, data_peak = time.perf_counter() - started, _peak_gib()
    config, task = fit_batch_size(framework, config, split)
    trainer = make_backend(framework, config, ratings.num_users, ratings.num_items)
    epoch_seconds = []
    for epoch in range(2):  # the first compiles the training step; the second is steady
        started = time.perf_counter()
        steps = [trainer.train_step(batch, pairs) for batch, pairs in task.epoch_inputs(epoch=epoch)]
        losses = trainer.metrics_to_host(steps)
        epoch_seconds.append(time.perf_counter() - started)
    evaluations = []
    for _ in range(2):  # the first compiles the scoring of a chunk; the second is warm
        started = time.perf_counter()
        result = task.evaluate(trainer, "validation")
        evaluations.append(time.perf_counter() - started)
    return {
        "size": size,
        "source": source,
        "framework": framework,
        "model": model,
        "users": ratings.num_users,
        "items": ratings.num_items,
        "ratings": len(ratings),
        "training lists": task.training_lists(),
        "steps": len(steps),
        "batch_size": config.batch_size,
        "chunk users": len(task.chunks()[0]),
        "data seconds": data_seconds,
        "data peak GiB": data_peak,
        "epoch seconds (first)": epoch_seconds[0],
        "epoch seconds (second)": epoch_seconds[1],
        "last loss": losses[-1]["loss_total"],
        "evaluation seconds (first)": evaluations[0],
        "evaluation seconds (warm)": evaluations[1],
        f"validation {SELECTION_METRIC}": result[SELECTION_METRIC],
        "peak GiB": _peak_gib(),
    }


def write_table(path: Path, lines: int, *, quoted: bool) -> None:
    """``lines`` interactions in ML-20M's users and items, drawn from seed 0, no pair twice."""
    import csv

    import numpy as np
    import pandas as pd

    users, items = SHAPES["ml-20m"][:2]
    rng = np.random.default_rng(0)
    pairs = np.unique(rng.integers(0, users * items, int(lines * 1.05) + 16))  # 1.4% repeats at 10**8
    pairs = rng.permutation(pairs)[:lines]  # file order unsorted, as a log's would be
    frame = pd.DataFrame(
        {
            "userId": pairs // items + 1,
            "movieId": pairs % items + 1,
            "rating": rng.integers(1, 11, len(pairs)) / 2,
            "timestamp": rng.integers(789_652_009, 1_427_784_002, len(pairs)),
        }
    )
    frame.to_csv(path, index=False, quoting=csv.QUOTE_ALL if quoted else csv.QUOTE_MINIMAL)


def measure_read(path: str) -> dict:
    """Reading the table at ``path``, in this process."""
    from ltr_common.interactions import read_interactions

    started = time.perf_counter()
    ratings = read_interactions(path)
    return {"ratings": len(ratings), "read seconds": time.perf_counter() - started, "peak GiB": _peak_gib()}


def measure_tables(counts: list[int]) -> list[dict]:
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for lines in counts:
            for quoted in (False, True):
                path = Path(folder) / f"{lines}{'-quoted' if quoted else ''}.csv"
                write_table(path, lines, quoted=quoted)
                command = [sys.executable, __file__, "--read", str(path)]
                done = subprocess.run(command, capture_output=True, text=True, check=False, env=os.environ)
                if done.returncode != 0:
                    raise RuntimeError(f"reading {lines:,} lines failed: {done.stderr.strip()[-2000:]}")
                row = {"lines": lines, "quoted": quoted, "file MB": path.stat().st_size / 1e6}
                rows.append({**row, **json.loads(done.stdout.strip().splitlines()[-1])})
                print(json.dumps(rows[-1]), flush=True)
                path.unlink()
    return rows


def format_tables(rows: list[dict]) -> str:
    lines = ["| lines | fields | file MB | read s | peak RSS GiB |", "| ---: | --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['lines']:,} | {'quoted' if r['quoted'] else 'plain'} | {r['file MB']:,.1f} | "
            f"{r['read seconds']:.2f} | {r['peak GiB']:.2f} |"
        )
    return "\n".join(lines)


def format_table(rows: list[dict]) -> str:
    lines = [
        "| size | data | users | items | ratings | steps per epoch | epoch s first / second "
        "| eval s first / warm | peak RSS GiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['source']} | {r['users']:,} | {r['items']:,} | {r['ratings']:,} | "
            f"{r['steps']:,} | {r['epoch seconds (first)']:.1f} / {r['epoch seconds (second)']:.1f} | "
            f"{r['evaluation seconds (first)']:.2f} / {r['evaluation seconds (warm)']:.2f} | "
            f"{r['peak GiB']:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        default=None,
        help=f"comma-separated, of {', '.join(SIZES)} (default: all, without --tables)",
    )
    parser.add_argument("--tables", default=None, help="comma-separated line counts of tables to read")
    parser.add_argument("--model", default="dot", choices=("dot", "mlp", "sequence"))
    parser.add_argument("--framework", default="jax", choices=("jax", "torch"))
    parser.add_argument("--batch_size", type=int, default=None, help="default: the model's")
    parser.add_argument("--real", action="store_true", help="the real ml-1m / ml-20m (cached or fetched)")
    parser.add_argument("--out", type=Path, default=None, help="folder for scale.json and scale.md")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process's size
    parser.add_argument("--read", default=None, help=argparse.SUPPRESS)  # a child process's table
    args = parser.parse_args(argv)
    options = dict(model=args.model, framework=args.framework, real=args.real, batch_size=args.batch_size)
    if args.one is not None:
        print(json.dumps(measure(args.one, **options)))
        return 0
    if args.read is not None:
        print(json.dumps(measure_read(args.read)))
        return 0
    tables = [count for count in (args.tables or "").split(",") if count]
    for count in tables:
        if not (count.isdigit() and 0 < int(count) <= 10**8):
            parser.error(f"--tables: expected line counts from 1 to 10**8, got {count!r}")
    tables = [int(count) for count in tables]
    default = "" if tables else ",".join(SIZES)  # --tables alone reads tables only
    sizes = [s for s in (default if args.sizes is None else args.sizes).split(",") if s]
    unknown = sorted(set(sizes) - set(SIZES))
    if unknown:
        parser.error(f"--sizes: unknown {unknown}; known: {', '.join(SIZES)}")
    from ltr_common.config import INT_LIMIT
    from ltr_train.cli import ensure_folder_or_exit

    if args.batch_size is not None and not 1 <= args.batch_size < INT_LIMIT:
        parser.error(f"--batch_size: expected an integer in [1, 2**31), got {args.batch_size}")
    if args.out is not None:  # made before the measurements, which it would otherwise lose
        ensure_folder_or_exit(parser, args.out, "--out")
    if tables:
        try:
            read = measure_tables(tables)
        except RuntimeError as err:
            print(f"scale.py: {err}", file=sys.stderr)
            return 1
        print(format_tables(read))
        if args.out is not None:
            from ltr_common.files import atomic_write_text, write_json

            write_json(args.out / "tables.json", read)
            atomic_write_text(args.out / "tables.md", format_tables(read) + "\n")
    if not sizes:
        return 0
    rows = []
    for size in sizes:
        command = [
            sys.executable,
            __file__,
            "--one",
            size,
            "--model",
            args.model,
            "--framework",
            args.framework,
        ]
        command += ["--real"] * args.real + (
            ["--batch_size", str(args.batch_size)] if args.batch_size is not None else []
        )
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=os.environ)
        if done.returncode != 0:
            print(
                f"scale.py: {size} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}",
                file=sys.stderr,
            )
            return 1
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    table = format_table(rows)
    print(table)
    if args.out is not None:
        from ltr_common.files import atomic_write_text, write_json

        write_json(args.out / "scale.json", rows)
        atomic_write_text(args.out / "scale.md", table + "\n")
    return 0


if __name__ == "__main__":
    from ltr_train import log_to_console  # here: each measured process imports what it needs
    from ltr_train.cli import run_script

    log_to_console()
    sys.exit(run_script(main))
