"""Learning-to-rank losses, metrics and training in PyTorch: the reference for ``jax_ltr``.

Every loss and metric mirrors ``jax_ltr``'s with the same signature and semantics (JAX-only
options: ``method=``, ``key=`` and ``order=``); the training helpers (``Trainer``,
``train_step``, ``make_optimizer``, ``as_arrays``) take PyTorch's objects (docs/losses.md).
"""

from torch_ltr._batch import as_arrays
from torch_ltr._losses import (
    approx_ndcg_loss,
    hybrid_loss,
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
from torch_ltr._metrics import (
    average_precision,
    mrr,
    ndcg_at_k,
    ranking_metrics,
    recall_at_k,
    retrieval_metrics,
)
from torch_ltr._model import DotProductScorer, TwoTowerScorer
from torch_ltr._train import Trainer, make_optimizer, train_step

__all__ = [
    "DotProductScorer",
    "Trainer",
    "TwoTowerScorer",
    "approx_ndcg_loss",
    "as_arrays",
    "average_precision",
    "hybrid_loss",
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
