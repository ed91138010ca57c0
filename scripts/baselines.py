"""Baselines, and trained runs beside them, on the same lists: means and paired differences.

    python scripts/baselines.py [--task rerank|retrieve] [--refit]
                                [--run LABEL=RUN_DIR[,RUN_DIR...] ...] [--baselines NAME,...]

Fits every baseline (``ltr_common.baselines``: random, popularity, item mean shrunk toward the
global mean, rating MF by ALS) on the training lists only — settings chosen on validation —
and evaluates it with the same task and metric code as the models (``jax_ltr`` metrics). Each
``--run`` is a model: one run directory per seed, all of the same task; its per-list metrics
are averaged over the seeds, and the table shows, for each model against each baseline and
each other model, the mean per-list difference ± its paired standard error on the same lists.
``--refit`` fits the baselines on training + validation ratings and reports test only, as a
refit run does. The data is the runs' own (all runs must share it, and its split); without
runs, MovieLens 100K or what the data flags say (``--dataset``, ``--data`` and its column
flags), split as ``--test_size`` and ``--validation_size`` say.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import jax_ltr
from ltr_common import ConfigError, load_split
from ltr_common.baselines import BASELINES, PEERS
from ltr_common.config import BOOL_FLAG, ArgumentParser, add_config_arguments, for_task
from ltr_common.evaluation import HEADLINE, metric_order
from ltr_common.stats import format_difference, paired_difference
from ltr_common.tasks import make_task
from ltr_common.tasks.retrieve import counted_mean
from ltr_train import log_to_console
from ltr_train.cli import USER_ERRORS, error_exit, run_script
from ltr_train.compare import DATA_OPTIONS, DATA_PLACES, MEASURE_OPTIONS, evaluate_all, fit_baselines

MEASURED = sorted({name for names in MEASURE_OPTIONS.values() for name in names})


def parse_runs(values: list[str]) -> dict[str, list[Path]]:
    runs = {}
    for value in values:
        label, sep, dirs = value.partition("=")
        if not sep or not label or not dirs:
            raise ConfigError(f"--run: expected LABEL=RUN_DIR[,RUN_DIR...], got {value!r}")
        if label in runs:  # the second would silently replace the first
            raise ConfigError(f"--run: the label {label!r} is given twice; give each model one --run")
        runs[label] = [Path(d) for d in dirs.split(",")]
    return runs


def report(results: dict, runs: dict) -> str:
    lines = []
    for part, scorers in results.items():
        names = [n for n in HEADLINE if n in next(iter(scorers.values()))]
        lines += [f"\n{part}: means over the lists that count\n", "| scorer | " + " | ".join(names) + " |"]
        lines.append("| --- |" + " ---: |" * len(names))
        for label, metrics in scorers.items():
            cells = []
            for i, n in enumerate(names):
                cell = f"{counted_mean(metrics[n]):.4f}"
                if "seeds" in metrics and len(metrics["seeds"]) > 1:
                    cell += f" ± {metrics['seeds'][:, i].std(ddof=1):.4f}"  # across seeds
                cells.append(cell)
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        for label in runs:
            lines += [f"\n{part}: {label} minus each other scorer, ± paired standard error\n"]
            lines.append("| against | " + " | ".join(names) + " |")
            lines.append("| --- |" + " ---: |" * len(names))
            for other, metrics in scorers.items():
                if other != label:
                    diffs = [
                        format_difference(*paired_difference(scorers[label][n], metrics[n])[:2])
                        for n in names
                    ]
                    lines.append(f"| {other} | " + " | ".join(diffs) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("rerank", "retrieve"), default="rerank")
    parser.add_argument(
        "--refit", **BOOL_FLAG, default=False, help="fit on training + validation, report test (alone: true)"
    )
    parser.add_argument("--run", action="append", default=[], metavar="LABEL=RUN_DIR[,RUN_DIR...]")
    parser.add_argument(
        "--baselines",
        default=None,
        help=f"comma list of {', '.join(BASELINES)} (default: all; for rerank all but the "
        f"history-reading retrieval peers {', '.join(PEERS)})",
    )
    data_flags = parser.add_argument_group("the data, without --run (a run's own otherwise)")
    add_config_arguments(data_flags, only={*DATA_OPTIONS, *DATA_PLACES, *MEASURED})
    args = parser.parse_args(argv)
    data = {
        name: getattr(args, name)
        for name in (*DATA_OPTIONS, *DATA_PLACES, *MEASURED)
        if getattr(args, name, None) is not None
    }
    default = [n for n in BASELINES if args.task == "retrieve" or n not in PEERS]
    names = default if args.baselines is None else [n for n in args.baselines.split(",") if n]
    try:
        runs = parse_runs(args.run)
        unknown = sorted(set(names) - set(BASELINES))
        if unknown:
            raise ConfigError(f"--baselines: unknown {unknown}; known: {', '.join(BASELINES)}")
        if not names and not runs:
            raise ConfigError(
                f"--baselines: none given, and no --run to score; known: {', '.join(BASELINES)}"
            )
        missing = [str(d) for dirs in runs.values() for d in dirs if not (d / "checkpoint_best").is_file()]
        if missing:
            raise ConfigError(f"--run: no checkpoint_best in {', '.join(missing)}")
        results = evaluate_all(args.task, args.refit, names, runs, data)
    except USER_ERRORS as err:
        return error_exit(parser, err)
    print(report(results, runs))
    return 0


def evaluate_baselines(
    seeds: int = 3, task: str = "rerank", baselines: Sequence[str] = BASELINES
) -> dict[str, dict[str, float]]:
    """``{"<baseline>/<split>": {metric: mean}}`` (the random baseline: ``seeds`` draws averaged)."""
    config = for_task(task)
    ratings, split = load_split(config)
    evaluator = make_task(config, split)
    results = {}
    for seed in range(seeds):
        scorers = fit_baselines(
            baselines if seed == 0 else [name for name in baselines if name == "random"],
            for_task(task, seed=seed),
            ratings,
            split,
            jax_ltr,
        )
        for name, scorer in scorers.items():
            for part in ("validation", "test"):
                results.setdefault(f"{name}/{part}", []).append(evaluator.evaluate(scorer, part))
    return {
        key: {k: float(np.mean([d[k] for d in draws])) for k in sorted(draws[0], key=metric_order)}
        for key, draws in results.items()
    }


if __name__ == "__main__":
    log_to_console()
    sys.exit(run_script(main))
