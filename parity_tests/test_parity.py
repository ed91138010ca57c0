"""Every loss and metric, every variant, both dtypes: JAX equals PyTorch in values and gradients."""

from __future__ import annotations

import numpy as np
import pytest

from parity_tests._cases import build_cases, compare, make_inputs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", build_cases(), ids=lambda case: case.id)
def test_jax_equals_torch_on_real_batches(case, dtype, parity_batches):
    rng = np.random.default_rng(7)
    for batch in parity_batches:
        result = compare(case, make_inputs(batch, rng, dtype), dtype)
        assert result.passed, f"{case.id} {dtype}: {result.detail}"


def test_table_covers_the_api():
    functions = {case.function for case in build_cases()}
    assert functions == {
        "listmle_loss",
        "pairwise_pl_loss",
        "hybrid_loss",
        "ndcg_at_k",
        "mrr",
        "average_precision",
        "recall_at_k",
    }
    variants = {case.variant for case in build_cases() if case.function == "listmle_loss"}
    for method in ("scan", "associative"):
        for reduction in ("none", "sum", "mean"):
            for mode in ("jit", "eager"):
                for tie in ("random", "position"):
                    assert f"method={method},tie_break={tie},reduction={reduction},{mode}" in variants
