"""Every registered loss on one task, each tuned with the same budget, then several seeds.

    python scripts/compare_losses.py --task rerank|retrieve [--losses NAME,...]
        [--learning-rates 1e-3,3e-3,1e-2] [--seeds 42,43,44] [--framework jax] --out DIR

For each loss: one run per learning rate with the first seed (the task's defaults otherwise),
the rate with the best validation NDCG@10 kept (a run that diverged, its loss not finite,
is never chosen: its folder keeps ``diverged.txt`` with the step and the value); then that
rate with every other seed. Runs go to ``DIR/<loss>/lr<rate>-seed<seed>`` (the rate
written exactly: ``%g`` where that is exact, else ``repr``); a finished one (its
``metrics.json`` or ``diverged.txt`` written, its ``config.json`` the one asked for) is
reused, so an interrupted comparison continues with the runs it had not finished, each
from the start.
Every loss trains with the task's other defaults: on rerank these add the pointwise squared
error with weight 1 to every loss (``--pointwise_weight``), so ``pointwise_mse`` there is that
term alone at twice the weight. The table: test NDCG@10 (mean over seeds ± the seeds'
standard deviation) and the paired difference against the first loss (ListMLE by default),
list by list on the same test lists (each model's per-list values averaged over its seeds),
± its paired standard error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path

from loguru import logger

from ltr_common import ConfigError, load_split
from ltr_common.config import SELECTION_METRIC, ArgumentParser, for_task
from ltr_common.files import atomic_write_text
from ltr_common.loop import NonFiniteError
from ltr_common.losses import LOSSES
from ltr_common.models import MODELS
from ltr_common.stats import format_difference, paired_difference
from ltr_train import FRAMEWORKS, configure, load_run_config, log_to_console, run
from ltr_train.cli import USER_ERRORS, error_exit, run_script
from ltr_train.compare import evaluate_all

METRIC = SELECTION_METRIC


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


DIVERGED = "diverged.txt"


def run_folder(out: Path, loss: str, rate: float, seed: int) -> Path:
    """``out/<loss>/lr<rate>-seed<seed>``: the rate written short (``%g``) where that is
    exact, else as ``repr`` writes it, so that two rates never share a folder."""
    short = f"{rate:g}"
    return out / loss / f"lr{short if float(short) == rate else repr(rate)}-seed{seed}"


def train_one(framework, config, run_dir: Path, data) -> dict | None:
    """The metrics of a run of ``config`` in ``run_dir``: a finished one's, or a new run's;
    None for a run that diverged (``NonFiniteError``; its message kept in ``diverged.txt``).
    An unfinished one (neither file) is removed first and starts again from the beginning."""
    done, diverged = run_dir / "metrics.json", run_dir / DIVERGED
    if done.is_file() or diverged.is_file():
        saved = load_run_config(run_dir)
        if saved != (framework, config):
            raise ConfigError(f"--out: {run_dir} holds a run of another configuration; use another --out")
        if diverged.is_file():
            return None
        try:
            return {"validation": {METRIC: json.loads(done.read_text())["validation"][METRIC]}}
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(
                f"{done}: unreadable ({type(err).__name__}: {err}); remove {run_dir} to train it again"
            ) from None
    if run_dir.exists():
        logger.warning("{}: an unfinished run; starting it again", run_dir)
        shutil.rmtree(run_dir)
    try:
        return run(framework, config, run_dir, data=data, progress_bar=False)
    except NonFiniteError as err:
        logger.warning("{}: diverged ({})", run_dir, err)
        atomic_write_text(diverged, f"{err.what}\n")
        return None


def compare(task: str, losses, rates, seeds, framework: str, out: Path, model: str = "dot") -> dict:
    """``{loss: {"rate": chosen, "validation": {rate: ndcg@10}, "dirs": [run dirs by seed]}}``."""
    base = for_task(task, model=model)
    configure(framework, base)
    data = load_split(base)
    chosen = {}
    for loss in losses:
        tried = {}
        for rate in rates:
            config = dataclasses.replace(base, loss=loss, learning_rate=rate, seed=seeds[0])
            result = train_one(framework, config, run_folder(out, loss, rate, seeds[0]), data)
            tried[rate] = math.nan if result is None else result["validation"][METRIC]
        finite = {r: v for r, v in tried.items() if math.isfinite(v)}
        if not finite:
            raise ConfigError(f"--learning-rates: {loss} diverged at every learning rate {tried}")
        rate = max(finite, key=finite.get)
        dirs = [run_folder(out, loss, rate, seeds[0])]
        for seed in seeds[1:]:
            config = dataclasses.replace(base, loss=loss, learning_rate=rate, seed=seed)
            dirs.append(run_folder(out, loss, rate, seed))
            if train_one(framework, config, dirs[-1], data) is None:
                raise ConfigError(
                    f"--seeds: {loss} at learning rate {rate!r} diverged with seed {seed} (see "
                    f"{dirs[-1] / DIVERGED}), though not with seed {seeds[0]}"
                )
        chosen[loss] = {"rate": rate, "validation": tried, "dirs": [str(d) for d in dirs]}
        logger.info("{}: learning rate {} (validation {} {})", loss, rate, METRIC, tried)
    return chosen


def table(task: str, chosen: dict) -> str:
    runs = {loss: [Path(d) for d in info["dirs"]] for loss, info in chosen.items()}
    results = evaluate_all(task, False, [], runs)["test"]
    reference = next(iter(runs))
    lines = [
        f"| loss | learning rate | test {METRIC} (± seed std) | minus {reference} (± paired SE) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for loss, metrics in results.items():
        seeds = metrics["seeds"][:, 0]  # the headline metric of each seed: ndcg@10 first
        mean = f"{seeds.mean():.4f} ± {seeds.std(ddof=1):.4f}" if len(seeds) > 1 else f"{seeds[0]:.4f}"
        diff = (
            "–"
            if loss == reference
            else format_difference(*paired_difference(metrics[METRIC], results[reference][METRIC])[:2])
        )
        lines.append(f"| {loss} | {chosen[loss]['rate']!r} | {mean} | {diff} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("rerank", "retrieve"), required=True)
    parser.add_argument("--losses", default=",".join(LOSSES), help="comma list; the first is the reference")
    parser.add_argument("--learning-rates", type=_floats, default=[1e-3, 3e-3, 1e-2])
    parser.add_argument("--seeds", type=_ints, default=[42, 43, 44])
    parser.add_argument("--framework", choices=FRAMEWORKS, default="jax")
    parser.add_argument("--model", choices=tuple(MODELS), default="dot", help="the model every loss trains")
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs (reused)")
    args = parser.parse_args(argv)
    losses = [name for name in args.losses.split(",") if name]
    unknown = sorted(set(losses) - set(LOSSES))
    if unknown:
        parser.error(f"--losses: unknown {unknown}; known: {', '.join(LOSSES)}")
    if not losses:
        parser.error(f"--losses: none given; known: {', '.join(LOSSES)}")
    if not args.learning_rates or not args.seeds:
        parser.error("--learning-rates and --seeds need at least one value each")
    for flag, values in (
        ("--losses", losses),
        ("--learning-rates", args.learning_rates),
        ("--seeds", args.seeds),
    ):
        twice = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if twice is not None:  # one run counted twice would look like agreeing seeds
            parser.error(f"{flag}: {twice!r} given twice")
    base = for_task(args.task, model=args.model)
    for flag, name, values in (
        ("--learning-rates", "learning_rate", args.learning_rates),
        ("--seeds", "seed", args.seeds),
    ):
        for value in values:
            try:
                dataclasses.replace(base, **{name: value})
            except ConfigError as err:
                parser.error(f"{flag}: {str(err).partition(': ')[2]}")
    try:
        chosen = compare(
            args.task, losses, args.learning_rates, args.seeds, args.framework, args.out, args.model
        )
        print(table(args.task, chosen))
    except USER_ERRORS as err:
        return error_exit(parser, err)
    return 0


if __name__ == "__main__":
    log_to_console("WARNING")  # the runs' own lines would drown the tables
    sys.exit(run_script(main))
