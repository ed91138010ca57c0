"""Moving framework-neutral NumPy batches into PyTorch tensors."""

from __future__ import annotations

import torch

from ltr_common import Batch


def as_arrays(batch: Batch, *, device: torch.device | str | None = None) -> Batch:
    """The same ``Batch`` (or ``SequenceBatch``) with every field a ``torch.Tensor`` (shared
    memory on the CPU).

    Example:
      >>> import numpy as np
      >>> from ltr_common import Batch
      >>> b = Batch(*(np.zeros((2, 3)) for _ in range(5)))
      >>> tuple(as_arrays(b).mask.shape)
      (2, 3)
    """
    return type(batch)(*(torch.from_numpy(field).to(device) for field in batch))
