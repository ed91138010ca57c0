"""Learning-to-rank losses, metrics and training in PyTorch: the reference for ``jax_ltr``.

Every public name mirrors ``jax_ltr``'s with the same signature and semantics (JAX-only
options: ``method=`` and ``key=``).
"""

from torch_ltr._batch import as_arrays
from torch_ltr._losses import hybrid_loss, listmle_loss, pairwise_pl_loss, suffix_logsumexp
from torch_ltr._metrics import average_precision, mrr, ndcg_at_k, recall_at_k

__all__ = [
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
