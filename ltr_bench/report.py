"""What every job writes: the machine it ran on, numbers in tables, and the result files."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import jax
import torch

from ltr_common.files import atomic_write_bytes, atomic_write_text


def fmt(value, spec: str, missing: str = "–") -> str:
    """``value`` formatted with ``spec``, or ``missing`` for None (not measured).

    Example:
      >>> fmt(2.345, ".1f"), fmt(None, ".1f")
      ('2.3', '–')
    """
    return missing if value is None else format(value, spec)


def machine() -> str:
    """The CPU, how many of its cores this process sees, and both frameworks' versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}; {os.cpu_count()} CPUs visible; JAX {jax.__version__} on {jax.devices()[0].platform}; "
        f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads)"
    )


def write_results(out: Path, result: dict, figure: bytes) -> list[Path]:
    """``benchmark.csv`` (the grid's rows), ``benchmark.json`` (``result`` whole: the machine,
    the grid's rows and each other job's) and ``benchmark.png`` (``figure``) in folder
    ``out``, each written whole; returns their paths."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"benchmark.{suffix}" for suffix in ("csv", "json", "png")]
    atomic_write_text(paths[0], pd.DataFrame(result["rows"]).to_csv(index=False))
    atomic_write_text(paths[1], json.dumps(result, indent=2))
    atomic_write_bytes(paths[2], figure)
    return paths
