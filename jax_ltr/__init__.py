"""Learning-to-rank losses, metrics and training in JAX."""

from jax_ltr._batch import as_arrays

__all__ = ["as_arrays"]
