"""Moving framework-neutral NumPy batches onto JAX devices."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ltr_common import Batch


def as_arrays(batch: Batch) -> Batch:
    """The same ``Batch`` with every field a ``jax.Array`` on the default device.

    Example:
      >>> import numpy as np
      >>> from ltr_common import Batch
      >>> b = Batch(*(np.zeros((2, 3)) for _ in range(5)))
      >>> as_arrays(b).mask.shape
      (2, 3)
    """
    return jax.tree.map(jnp.asarray, batch)
