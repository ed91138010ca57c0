"""Evaluate the non-learned baselines on the validation and test lists (jax_ltr metrics).

python scripts/baselines.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from jax_ltr._train import ranking_metrics
from ltr_common import TrainConfig, iterate_batches, load_split
from ltr_common.baselines import BASELINES, baseline_scores, item_tables


def evaluate_baselines(seeds: int = 3) -> dict[str, dict[str, float]]:
    config = TrainConfig()
    ratings, split = load_split(config)
    tables = item_tables(split.train, ratings.num_items)
    results = {}
    for name in BASELINES:
        for part in ("validation", "test"):
            totals, count = {}, 0
            for seed in range(seeds if name == "random" else 1):
                rng = np.random.default_rng(seed)
                for batch in iterate_batches(getattr(split, part), batch_size=1024, shuffle=False):
                    real = batch.list_ids >= 0
                    scores = baseline_scores(name, batch, tables, rng)
                    metrics = ranking_metrics(scores, batch.labels, batch.mask, config.top_k)
                    for key, values in metrics.items():
                        totals[key] = totals.get(key, 0.0) + float(np.asarray(values)[real].sum())
                    count += int(real.sum())
            results[f"{name}/{part}"] = {k: v / count for k, v in totals.items()}
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="draws averaged for the random baseline")
    args = parser.parse_args(argv)
    results = evaluate_baselines(args.seeds)
    names = ["ndcg@5", "ndcg@10", "ndcg@20", "mrr", "map", "recall@10"]
    print(f"{'baseline':<22}" + "".join(f"{n:>10}" for n in names))
    for key, metrics in results.items():
        print(f"{key:<22}" + "".join(f"{metrics[n]:>10.4f}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
