"""Training runs: the layer above both frameworks.

It picks the backend (``make_backend``: ``jax_ltr.Trainer`` or ``torch_ltr.Trainer``), applies
a framework's process-wide settings for scripts (``configure``), runs a training run in a
run directory (``run``: config, log, TensorBoard events, checkpoints, metrics), reads a run
directory back (``ltr_train.runs``) and shows a run on the console (``ltr_train.console``).
``ltr_common`` below it never imports a framework.
"""

from ltr_train.backends import FRAMEWORKS, configure, make_backend
from ltr_train.console import format_table, log_to_console, run_summary
from ltr_train.run import EventWriter, fit_batch_size, run
from ltr_train.runs import default_run_dir, load_run_config, load_run_data, moved_data

__all__ = [
    "FRAMEWORKS",
    "EventWriter",
    "configure",
    "default_run_dir",
    "fit_batch_size",
    "format_table",
    "load_run_config",
    "load_run_data",
    "log_to_console",
    "make_backend",
    "moved_data",
    "run",
    "run_summary",
]
