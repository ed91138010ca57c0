"""Learning-to-rank losses, metrics and training in PyTorch (the reference)."""

from torch_ltr._batch import as_arrays

__all__ = ["as_arrays"]
