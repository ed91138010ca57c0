"""Compare every jax_ltr loss and metric with its torch_ltr reference on real MovieLens batches.

    python scripts/check_parity.py --batches 20 [--dtype float32|float64] [--json PATH]
    python scripts/check_parity.py --training 10

``--training N``: instead, the worst ratio of a float32 parameter-gradient difference to its
bound, per training loss, over the first N training batches (``parity_tests._training``).

``--scales 10,100,1e3,1e4``: instead, how ListMLE's float32 score gradient drifts from its
float64 value (``jax.grad`` of the float64 loss) as the scores grow, in each framework: 4
lists of 8 items, seeded normal scores times each scale, integer labels 0..4.

Prints one row per (function, variant, dtype, mode): the largest absolute difference over
all batches and reductions, values and gradients together, the worst ratio of a difference
to its tolerance (``parity_tests._bounds``: float32 tolerances are ulps of the magnitude of
what was summed), and pass/fail. Exits 1 when any row fails. The batches come from the
parity suite's split: training lists cut at ``parity_tests.PARITY_LIST_SIZE`` (200) ratings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ltr_common import load_movielens, temporal_split
from ltr_common.config import ArgumentParser
from ltr_common.files import atomic_write_text
from ltr_train import log_to_console
from ltr_train.cli import USER_ERRORS, error_exit, run_script
from parity_tests import PARITY_LIST_SIZE
from parity_tests._cases import MODES, build_cases, compare, make_inputs, real_batches


def make_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20, help="random real batches to compare on")
    parser.add_argument(
        "--dtype", choices=("float32", "float64"), action="append", help="repeatable; default both"
    )
    parser.add_argument("--functions", nargs="+", default=None, help="only these functions")
    parser.add_argument("--lists-per-batch", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument("--training", type=int, default=0, metavar="N", help="parameter gradients instead")
    parser.add_argument(
        "--scales", default=None, help="ListMLE's gradient error at these score scales instead"
    )
    return parser


def parse_args(argv, parser: argparse.ArgumentParser | None = None):
    """The arguments; an impossible one exits with status 2 and a line naming it."""
    parser = parser or make_parser()
    args = parser.parse_args(argv)
    for flag, value, low in (
        ("--batches", args.batches, 1),
        ("--lists-per-batch", args.lists_per_batch, 1),
        ("--seed", args.seed, 0),
        ("--training", args.training, 0),
    ):
        if value < low:
            parser.error(f"{flag}: expected an integer >= {low}, got {value}")
    if args.scales is not None:
        try:
            args.scales = [float(x) for x in args.scales.split(",")]
        except ValueError:
            parser.error(f"--scales: expected positive numbers separated by commas, got {args.scales!r}")
        if not all(0 < x < 1e30 for x in args.scales):
            parser.error(f"--scales: expected numbers in (0, 1e30), got {args.scales}")
    return args


def gradient_drift(scales: list[float], seed: int) -> dict[float, dict[str, float]]:
    """``{scale: {framework: max |float32 gradient - float64 gradient|}}`` of ListMLE."""
    import jax
    import jax.numpy as jnp
    import torch

    import jax_ltr
    import torch_ltr

    rng = np.random.default_rng(seed)
    drift = {}
    for scale in scales:
        scores = (rng.standard_normal((4, 8)) * scale).astype(np.float32)
        labels = rng.integers(0, 5, (4, 8)).astype(np.float32)
        with jax.enable_x64(True):
            exact = jax.grad(jax_ltr.listmle_loss)(
                jnp.asarray(scores, jnp.float64), jnp.asarray(labels, jnp.float64)
            )
        found = {"jax": jax.grad(jax_ltr.listmle_loss)(jnp.asarray(scores), jnp.asarray(labels))}
        tensor = torch.tensor(scores, requires_grad=True)
        torch_ltr.listmle_loss(tensor, torch.tensor(labels)).backward()
        found["torch"] = tensor.grad
        drift[scale] = {
            k: float(np.abs(np.asarray(v, np.float64) - np.asarray(exact)).max()) for k, v in found.items()
        }
    return drift


def training_ratios(batches: int) -> int:
    from ltr_common.losses import LOSSES
    from parity_tests._training import worst_parameter_gradient_ratio

    split = temporal_split(load_movielens(), max_list_size=PARITY_LIST_SIZE)
    print("| training loss | worst float32 parameter-gradient |difference| / bound |")
    print("| --- | ---: |")
    worst = 0.0
    for loss in LOSSES:
        ratio = worst_parameter_gradient_ratio(split, loss, batches=batches)
        worst = max(worst, ratio)
        print(f"| {loss} | {ratio:.3f} |")
    print(f"\n{batches} batches; {'pass' if worst <= 1 else 'FAIL'}")
    return 0 if worst <= 1 else 1


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parse_args(argv, parser)
    try:
        return compare_all(args)
    except USER_ERRORS as err:
        return error_exit(parser, err)


def compare_all(args) -> int:
    """Print the parity table (with ``--training``, the gradient ratios); 1 when a row fails."""
    if args.training:
        return training_ratios(args.training)
    if args.scales is not None:
        drift = gradient_drift(args.scales, args.seed)
        print("| scale | jax_ltr max error | torch_ltr max error |\n| ---: | ---: | ---: |")
        for scale, errors in drift.items():
            print(f"| {scale:g} | {errors['jax']:.1e} | {errors['torch']:.1e} |")
        return 0
    dtypes = args.dtype or ["float32", "float64"]
    every = build_cases()
    known = sorted({c.function for c in every})
    unknown = sorted(set(args.functions or ()) - set(known))
    if unknown:  # a misspelt name would be passed over in silence
        print(f"--functions: unknown {unknown}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    cases = [c for c in every if args.functions is None or c.function in args.functions]
    split = temporal_split(load_movielens(), max_list_size=PARITY_LIST_SIZE)
    batches = real_batches(
        split, count=args.batches, lists_per_batch=args.lists_per_batch, padding_rows=4, seed=args.seed
    )
    rows = []
    total = len(cases) * len(dtypes) * len(MODES) * len(batches)
    with tqdm(total=total, desc="parity", file=sys.stderr) as bar:
        for dtype in dtypes:
            rng = np.random.default_rng(args.seed)
            inputs = [make_inputs(batch, rng, dtype) for batch in batches]
            for case in cases:
                for mode in MODES:
                    results = []
                    for one in inputs:
                        results.append(compare(case, one, dtype, mode))
                        bar.update()
                    failed = [r.detail for r in results if not r.passed]
                    rows.append(
                        {
                            "function": case.function,
                            "variant": case.variant,
                            "dtype": dtype,
                            "mode": mode,
                            "reductions": list(MODES[mode]),
                            "max_abs_diff": max(r.max_abs for r in results),
                            "worst_diff_over_tolerance": max(r.worst_ratio for r in results),
                            "passed": not failed,
                            "failures": failed,
                        }
                    )
    print_table(rows)
    failures = sum(not r["passed"] for r in rows)
    print(
        f"\n{len(rows) - failures} passed, {failures} failed ({len(batches)} batches of "
        f"{args.lists_per_batch} lists + 4 padding rows)"
    )
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(rows, indent=1) + "\n")
    return 1 if failures else 0


def print_table(rows) -> None:
    print("| function | variant | dtype | mode | max abs diff | diff/tol | result |")
    print("| --- | --- | --- | --- | ---: | ---: | --- |")
    for r in rows:
        print(
            f"| {r['function']} | {r['variant']} | {r['dtype']} | {r['mode']} | {r['max_abs_diff']:.2e} | "
            f"{r['worst_diff_over_tolerance']:.2f} | {'pass' if r['passed'] else 'FAIL'} |"
        )


if __name__ == "__main__":
    log_to_console()
    sys.exit(run_script(main))
