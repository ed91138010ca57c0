"""From a configuration to the split lists every trainer and script starts from."""

from __future__ import annotations

from ltr_common.config import TrainConfig
from ltr_common.lists import Split, temporal_split
from ltr_common.movielens import Ratings, load_movielens


def load_split(config: TrainConfig, *, refit: bool | None = None) -> tuple[Ratings, Split]:
    """Load MovieLens 100K as the config says and split it in time.

    With ``refit`` (default: ``config.refit``) the validation ratings join the training lists
    and the validation lists are empty.
    """
    ratings = load_movielens(data_dir=config.data_dir, cache_dir=config.cache_dir)
    return ratings, split_ratings(ratings, config, refit=refit)


def split_ratings(ratings: Ratings, config: TrainConfig, *, refit: bool | None = None) -> Split:
    refit = config.refit if refit is None else refit
    return temporal_split(
        ratings,
        test_size=config.test_size,
        validation_size=0 if refit else config.validation_size,
        max_list_size=config.max_list_size,
    )
