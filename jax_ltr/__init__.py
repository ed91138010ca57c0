"""Learning-to-rank losses, metrics and training in JAX.

The loss and metric contract is stated once, in ``jax_ltr._losses``; ``torch_ltr``
mirrors every loss and metric with the same signature and semantics (docs/losses.md names
what differs: JAX-only options and names, and the training helpers' framework objects).
"""

from jax_ltr._batch import as_arrays
from jax_ltr._losses import (
    LISTMLE_METHODS,
    approx_ndcg_loss,
    hybrid_loss,
    label_order,
    lambda_loss,
    listmle_loss,
    pairwise_pl_loss,
    pointwise_mse_loss,
    position_listmle_loss,
    sigmoid_cross_entropy_loss,
    softmax_loss,
    suffix_logsumexp,
    topk_listmle_loss,
)
from jax_ltr._metrics import (
    average_precision,
    mrr,
    ndcg_at_k,
    ranking_metrics,
    recall_at_k,
    retrieval_metrics,
)
from jax_ltr._model import DotProductScorer, TwoTowerScorer
from jax_ltr._train import Trainer, clip_by_global_norm, create_train_state, make_optimizer, train_step

__all__ = [
    "LISTMLE_METHODS",
    "DotProductScorer",
    "Trainer",
    "TwoTowerScorer",
    "approx_ndcg_loss",
    "as_arrays",
    "average_precision",
    "clip_by_global_norm",
    "create_train_state",
    "hybrid_loss",
    "label_order",
    "lambda_loss",
    "listmle_loss",
    "make_optimizer",
    "mrr",
    "ndcg_at_k",
    "pairwise_pl_loss",
    "pointwise_mse_loss",
    "position_listmle_loss",
    "ranking_metrics",
    "recall_at_k",
    "retrieval_metrics",
    "sigmoid_cross_entropy_loss",
    "softmax_loss",
    "suffix_logsumexp",
    "topk_listmle_loss",
    "train_step",
]
