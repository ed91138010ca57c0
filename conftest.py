"""Shared by tests/ and parity_tests/: the real MovieLens 100K, loaded once, and one on-disk
XLA compilation cache for the whole test run, and XLA's quick compilation for tests."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from ltr_common import Ratings, Split, load_movielens, temporal_split

_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
_OWNED = "JAX_LTR_TEST_OWNS_XLA_CACHE"
# XLA settings for the suite's quick compilation (the sharding tests' subprocesses use them too).
TEST_LIST_SIZE = 200
QUICK_COMPILE = {"xla_backend_optimization_level": "0", "xla_cpu_use_fusion_emitters": "false"}


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
    # time here (the parity table compiles in about half the time without them). Rounding may
    # differ from a default compilation, within the bounds the parity tests derive; the memory
    # test and ``scripts/check_parity.py`` compile with XLA's defaults. Set before JAX
    # starts; a setting the caller chose is kept.
    flags = os.environ.get("XLA_FLAGS", "")
    for flag, value in QUICK_COMPILE.items():
        if flag not in flags:
            flags = f"{flags} --{flag}={value}".strip()
    os.environ["XLA_FLAGS"] = flags
    if os.environ.get(_CACHE_ENV):
        return
    os.environ[_CACHE_ENV] = tempfile.mkdtemp(prefix="jax-ltr-tests-xla-")
    os.environ[_OWNED] = str(os.getpid())
    # Cache every compilation worth a file read, not only those over JAX's default of 1 s.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")


def pytest_unconfigure(config):
    if os.environ.get(_OWNED) == str(os.getpid()):
        shutil.rmtree(os.environ.pop(_CACHE_ENV), ignore_errors=True)


@pytest.fixture(scope="session")
def movielens() -> Ratings:
    # Through the real pipeline (local folder, cache, download or the PyPI wheel):
    # a missing data set is a failure, never a skip.
    return load_movielens()


@pytest.fixture(scope="session")
def movielens_split(movielens: Ratings) -> Split:
    # Training lists cut at 200 ratings: real batches with every feature the tests need (tied
    # labels, lengths from 1 to 200, padding) at about a quarter of the default's widest list
    # (737), which keeps the parity and batching tests quick.
    return temporal_split(movielens, max_list_size=TEST_LIST_SIZE)
