"""Framework-neutral learning-to-rank plumbing (NumPy and pandas only; never JAX or PyTorch).

Data loading, the temporal split, padded batches, pair sampling, configuration, the loss and
model registries, argument checks, evaluation over lists and the training loop live here
once; ``jax_ltr`` and ``torch_ltr`` both use them and neither imports the other's framework.
``ltr_train``, above all three, picks a framework for a run.
"""

from ltr_common.batching import Batch, bucket_length, epoch_order, iterate_batches, make_batch
from ltr_common.config import ConfigError, TrainConfig, parse_config
from ltr_common.data import load_split
from ltr_common.evaluation import evaluate, per_list_metrics
from ltr_common.interactions import TableOptions, read_interactions
from ltr_common.lists import Lists, Split, temporal_split
from ltr_common.losses import LOSSES
from ltr_common.models import MODELS
from ltr_common.movielens import (
    ML_100K,
    DataError,
    ExpectedCounts,
    Ratings,
    default_cache_dir,
    load_movielens,
    read_udata,
)
from ltr_common.pairs import sample_pairs

__all__ = [
    "LOSSES",
    "ML_100K",
    "MODELS",
    "Batch",
    "ConfigError",
    "DataError",
    "ExpectedCounts",
    "Lists",
    "Ratings",
    "Split",
    "TableOptions",
    "TrainConfig",
    "bucket_length",
    "default_cache_dir",
    "epoch_order",
    "evaluate",
    "iterate_batches",
    "load_movielens",
    "load_split",
    "make_batch",
    "parse_config",
    "per_list_metrics",
    "read_interactions",
    "read_udata",
    "sample_pairs",
    "temporal_split",
]
