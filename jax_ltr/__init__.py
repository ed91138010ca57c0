"""Learning-to-rank losses, metrics and training in JAX.

The loss and metric contract is stated once, in ``jax_ltr._losses``; ``torch_ltr``
mirrors every public name here with the same signature and semantics.
"""

from jax_ltr._batch import as_arrays
from jax_ltr._losses import LISTMLE_METHODS, hybrid_loss, listmle_loss, pairwise_pl_loss, suffix_logsumexp
from jax_ltr._metrics import average_precision, mrr, ndcg_at_k, recall_at_k

__all__ = [
    "LISTMLE_METHODS",
    "as_arrays",
    "average_precision",
    "hybrid_loss",
    "listmle_loss",
    "mrr",
    "ndcg_at_k",
    "pairwise_pl_loss",
    "recall_at_k",
    "suffix_logsumexp",
]
