"""From a configuration to the split lists every trainer and script starts from."""

from __future__ import annotations

from ltr_common.config import TrainConfig
from ltr_common.lists import Split, temporal_split
from ltr_common.movielens import Ratings, load_movielens


def load_split(config: TrainConfig) -> tuple[Ratings, Split]:
    """Load MovieLens 100K as the config says and split it in time."""
    ratings = load_movielens(data_dir=config.data_dir, cache_dir=config.cache_dir)
    split = temporal_split(
        ratings,
        test_size=config.test_size,
        validation_size=config.validation_size,
        max_list_size=config.max_list_size,
    )
    return ratings, split
