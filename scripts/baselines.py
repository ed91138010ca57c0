"""Evaluate the non-learned baselines on the validation and test lists.

python scripts/baselines.py [--seeds 3]

Same lists and the same metric code as the trained models (``ltr_common.evaluate`` with
``jax_ltr.ranking_metrics``).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from jax_ltr import ranking_metrics
from ltr_common import TrainConfig, evaluate, load_split
from ltr_common.baselines import BASELINES, baseline_metrics, item_tables
from ltr_common.evaluation import metric_order


def evaluate_baselines(seeds: int = 3) -> dict[str, dict[str, float]]:
    """``{"<baseline>/<split>": {metric: mean}}``; the random baseline averaged over ``seeds`` draws."""
    config = TrainConfig()
    ratings, split = load_split(config)
    tables = item_tables(split.train, ratings.num_items)
    results = {}
    for name in BASELINES:
        for part in ("validation", "test"):
            draws = [
                evaluate(
                    baseline_metrics(
                        name, tables, ranking_metrics, top_k=config.top_k, rng=np.random.default_rng(seed)
                    ),
                    getattr(split, part),
                )
                for seed in range(seeds if name == "random" else 1)
            ]
            results[f"{name}/{part}"] = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="draws averaged for the random baseline")
    args = parser.parse_args(argv)
    results = evaluate_baselines(args.seeds)
    names = sorted(next(iter(results.values())), key=metric_order)
    print(f"{'baseline':<22}" + "".join(f"{n:>10}" for n in names))
    for key, metrics in results.items():
        print(f"{key:<22}" + "".join(f"{metrics[n]:>10.4f}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
