"""Train a ranker on MovieLens 100K.

    python scripts/train.py [--framework jax|torch] [--<option> VALUE ...] [--config FILE]

Every option of ``ltr_common.TrainConfig`` is a flag; ``--help`` lists them.
The data is loaded (offline if need be), split in time, and its statistics printed.
"""

from __future__ import annotations

import argparse
import sys

from loguru import logger

from ltr_common import ConfigError, DataError, iterate_batches, load_split, parse_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--framework", choices=("jax", "torch"), default="jax")
    try:
        config, args = parse_config(argv, parser=parser)
    except ConfigError as err:
        parser.error(str(err))
    logger.info("config: {}", config.to_dict())
    try:
        ratings, split = load_split(config)
    except DataError as err:
        logger.error("{}", err)
        return 1
    print(
        f"MovieLens 100K from {ratings.source}: {len(ratings)} ratings, "
        f"{ratings.num_users} users, {ratings.num_items} items"
    )
    print(split.summary())
    batch = next(
        iterate_batches(
            split.train,
            batch_size=config.batch_size,
            seed=config.seed,
            length_bucketing=config.length_bucketing,
        )
    )
    print(f"first training batch: items {batch.item_ids.shape}, {int(batch.mask.sum())} real items")
    logger.warning("the {} trainer is not part of this version yet: stopping after the data", args.framework)
    return 0


if __name__ == "__main__":
    sys.exit(main())
