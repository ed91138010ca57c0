"""Shared by tests/ and parity_tests/: the real MovieLens 100K, loaded once, and one on-disk
XLA compilation cache for the whole test run, XLA's quick compilation for tests, Python's
garbage collector run less often, and pytest-xdist's workers sharing the cores (PyTorch's
threads, the slow tests started first)."""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile

import pytest

from ltr_common import Ratings, Split, load_movielens, temporal_split
from parity_tests import PARITY_LIST_SIZE

_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
_OWNED = "JAX_LTR_TEST_OWNS_XLA_CACHE"
# XLA settings for the suite's quick compilation (the sharding tests' subprocesses use them too).
QUICK_COMPILE = {
    "xla_backend_optimization_level": "0",
    "xla_cpu_use_fusion_emitters": "false",
    "xla_cpu_parallel_codegen_split_count": "1",
}


def pytest_configure(config):
    """Point JAX's persistent compilation cache at a folder made for this test run, and
    compile without LLVM's optimisation passes.

    Many tests compile the same program (a small model's training step, in-process and in
    subprocesses); with the cache, the second compilation is a file read. The folder is set
    through the environment before JAX is imported, so pytest-xdist's workers and the
    tests' subprocesses share it; the process that made it removes it at the end. A cache
    folder the caller set (``JAX_COMPILATION_CACHE_DIR``) is used as it is.
    """
    # Tests compile hundreds of small programs and run each a few times: LLVM's optimisation
    # passes and XLA's newer CPU fusion emitters cost more compile time than they save in run
    # time here (the parity table compiles in about half the time without them). XLA also
    # splits each program's code generation over threads; with a pytest-xdist worker per core
    # no core is idle to take them, and unsplit the parity tests take an eighth less CPU time
    # on 2 cores. Rounding may differ from a default compilation, within the bounds the parity
    # tests derive; the memory test and ``scripts/check_parity.py`` compile with XLA's
    # defaults. Set before JAX starts; a setting the caller chose is kept.
    flags = os.environ.get("XLA_FLAGS", "")
    for flag, value in QUICK_COMPILE.items():
        if flag not in flags:
            flags = f"{flags} --{flag}={value}".strip()
    os.environ["XLA_FLAGS"] = flags
    config.addinivalue_line(
        "markers",
        "slow: takes seconds on its own (a whole training run, a subprocess, a long compilation); "
        "its file runs first",
    )
    # The label order's sorting network costs about 0.6 s of compilation per program that
    # holds a sort, hundreds of them here, where each runs a few times: XLA's sort serves
    # (``jax_ltr._label_order.SORTING_NETWORK_ENV``, inherited by the workers and the
    # subprocesses), and parity_tests/test_label_order.py holds the network to it.
    os.environ.setdefault("JAX_LTR_SORTING_NETWORK", "0")
    # Each worker traces and compiles some 1,600 JAX programs, allocating millions of
    # short-lived objects: at CPython's default thresholds (700, 10, 10) a worker ran about
    # 9,000 collections, the full ones scanning a heap that holds every program compiled so
    # far: 21 s of the suite's CPU time on 2 cores (timed with gc.callbacks). At these, about
    # 470 collections and 4 s, at the same peak memory (VmHWM 3.3-3.8 GB a worker either way):
    # JAX's objects are freed by their reference counts, not by the collector.
    gc.set_threshold(10_000, 50, 1_000)
    if os.environ.get(_CACHE_ENV):
        return
    os.environ[_CACHE_ENV] = tempfile.mkdtemp(prefix="jax-ltr-tests-xla-")
    os.environ[_OWNED] = str(os.getpid())
    # Cache every compilation, not only those over JAX's default of 1 s: the two workers
    # compile many of the same small programs (each primitive a test runs outside jit, at each
    # shape), and a file read is cheaper than a compilation. Suite timed in turns on 2 cores:
    # 208 and 214 s caching all against 235 and 229 s caching those over 0.3 s.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def _share_the_cores_between_workers():
    """Give each pytest-xdist worker its share of the cores for PyTorch's OpenMP threads.

    PyTorch starts one OpenMP thread per core in every process, and OpenMP threads wait for
    each other at the end of each parallel loop: with two workers on two cores, a worker's
    loop stalls whenever the other worker holds a core, and a small PyTorch training run
    takes ten times as long as it does alone. Set before PyTorch starts, in the environment,
    so the tests' subprocesses get the same share; a setting the caller chose is kept. It
    runs when this file is imported (below), before any test module imports PyTorch.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (cores or 1) // workers)))


_share_the_cores_between_workers()


def pytest_collection_modifyitems(config, items):
    """Run the files that hold a ``slow`` test first, each file's tests in their order.

    pytest-xdist hands each worker a run of consecutive tests and lets an idle worker take
    tests not yet started from another's queue: a slow test started last keeps its worker
    busy while the other has nothing left to do. Started first, the slow tests run beside
    the many short ones. Whole files move, so that a module-scoped fixture is made once.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Remove the run's compilation cache (in the process that made it); end a pytest-xdist
    worker at once.

    A worker's results have reached the controlling process by now (its "workerfinished"
    message is sent at the end of its session), and the controller waits for the worker's
    process to end. A worker holds a thousand or more compiled XLA programs, and freeing
    them one by one as Python shuts down takes seconds (2 s for 1,500 small programs on a
    2-core CPU) that nothing needs: the process ends here, its output flushed, after the
    other plugins' ``pytest_unconfigure`` (any but another ``trylast`` one).
    """
    if os.environ.get(_OWNED) == str(os.getpid()):
        shutil.rmtree(os.environ.pop(_CACHE_ENV), ignore_errors=True)
    if hasattr(config, "workerinput"):  # set by pytest-xdist in its workers only
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@pytest.fixture(scope="session")
def movielens() -> Ratings:
    # Through the real pipeline (local folder, cache, download or the PyPI wheel):
    # a missing data set is a failure, never a skip.
    return load_movielens()


@pytest.fixture(scope="session")
def movielens_split(movielens: Ratings) -> Split:
    # The parity checks' split (``parity_tests.PARITY_LIST_SIZE``), for the batching tests too.
    return temporal_split(movielens, max_list_size=PARITY_LIST_SIZE)
