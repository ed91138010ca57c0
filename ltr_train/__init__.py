"""Training runs: the layer above both frameworks.

It picks the backend (``make_backend``: ``jax_ltr.Trainer`` or ``torch_ltr.Trainer``), applies
a framework's process-wide settings for scripts (``configure``), and runs a training run in a
run directory (``run``: config, log, TensorBoard events, checkpoints, metrics). ``ltr_common``
below it never imports a framework.
"""

from ltr_train.backends import FRAMEWORKS, configure, make_backend
from ltr_train.run import (
    default_run_dir,
    format_table,
    load_run_config,
    load_run_data,
    run,
    summary_writer_class,
)

__all__ = [
    "FRAMEWORKS",
    "configure",
    "default_run_dir",
    "format_table",
    "load_run_config",
    "load_run_data",
    "make_backend",
    "run",
    "summary_writer_class",
]
