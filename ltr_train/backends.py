"""The one place that knows both frameworks: a configuration and a framework name in, a
``ltr_common.loop.Backend`` out; and the framework's process-wide settings, for scripts to
apply once at start-up."""

from __future__ import annotations

import os
from pathlib import Path

from ltr_common.config import ConfigError, TrainConfig
from ltr_common.loop import Backend
from ltr_common.movielens import default_cache_dir

FRAMEWORKS = ("jax", "torch")


def framework_package(framework: str):
    """The package of ``framework`` ("jax" or "torch"): ``jax_ltr`` or ``torch_ltr``, its
    trainer and its metric functions; each framework is imported only when asked for."""
    if framework == "jax":
        import jax_ltr

        return jax_ltr
    if framework == "torch":
        import torch_ltr

        return torch_ltr
    raise ConfigError(f"--framework: expected one of {', '.join(FRAMEWORKS)}, got {framework!r}")


def make_backend(framework: str, config: TrainConfig, num_users: int, num_items: int) -> Backend:
    """A new trainer of ``framework`` ("jax" or "torch") for ``config``."""
    return framework_package(framework).Trainer(config, num_users, num_items)


def device_count(framework: str, config: TrainConfig) -> int:
    """How many devices a trainer of ``framework`` splits each batch over: JAX's ``--devices``
    (0: every device JAX sees, on every host); PyTorch trains on one."""
    if framework != "jax":
        return 1
    import jax

    return config.devices or jax.device_count()


# The shortest compilation the persistent cache keeps: loading a program takes milliseconds.
CACHED_COMPILE_S = 0.05


def configure(framework: str, config: TrainConfig) -> None:
    """Process-wide settings a run of ``framework`` wants; scripts call this once, at start-up.

    JAX: its persistent compilation cache under ``<cache folder>/xla``. Each padded batch
    width compiles its own step (about 0.9 s each for the rerank main job on a 2-core CPU);
    with the cache a later run loads them instead. Programs that compile in
    ``CACHED_COMPILE_S`` or more are kept, not only JAX's default of a second or more: the
    evaluation's scores and metrics compile in about 0.1 and 0.3 s and load in a few
    milliseconds. Left alone when ``config.compilation_cache`` is off or the user has set a
    cache folder of their own (``JAX_COMPILATION_CACHE_DIR``).
    """
    if framework != "jax" or not config.compilation_cache:
        return
    import jax

    if not jax.config.jax_compilation_cache_dir:
        path = (Path(config.cache_dir) if config.cache_dir else default_cache_dir()) / "xla"
        jax.config.update("jax_compilation_cache_dir", str(path))
        if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # the user's, if set
            jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHED_COMPILE_S)
