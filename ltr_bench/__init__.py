"""Benchmarks of jax_ltr against PyTorch and Rax: three jobs and what they share.

- ``grid``: the loss grid, value (and gradient) of each loss per implementation, cell by cell;
- ``steps``: the trainers' steps, JAX against PyTorch over the same batches, epoch by epoch;
- ``main_job``: ``scripts/train.py`` end to end as a user runs it, JAX against PyTorch.

``registry`` lists the implementations the grid times, ``timing`` times them in turns and
``report`` writes tables and files. ``scripts/benchmark.py`` is the command line;
``scripts/accelerator_suite.py`` runs the same jobs on a GPU.
"""

from ltr_bench.grid import GridOptions, grid_table, make_inputs, plot, ratios, run_grid
from ltr_bench.main_job import main_job_table, run_main_job
from ltr_bench.registry import (
    DTYPES,
    LABELS,
    LOSS_NAMES,
    MODES,
    Impl,
    implementation_names,
    implementations,
)
from ltr_bench.report import fmt, machine, write_results
from ltr_bench.steps import steps_table, train_throughput
from ltr_bench.timing import time_cells

__all__ = [
    "DTYPES",
    "LABELS",
    "LOSS_NAMES",
    "MODES",
    "GridOptions",
    "Impl",
    "fmt",
    "grid_table",
    "implementation_names",
    "implementations",
    "machine",
    "main_job_table",
    "make_inputs",
    "plot",
    "ratios",
    "run_grid",
    "run_main_job",
    "steps_table",
    "time_cells",
    "train_throughput",
    "write_results",
]
