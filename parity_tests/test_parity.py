"""Every loss and metric, every variant, JAX equals PyTorch in values and gradients on real
batches, within the rounding bounds of ``parity_tests._bounds``.

Each case runs jitted in float32 and float64 (one compiled function returns every
reduction's value and gradient) and eagerly in float32 (reduction "none", which carries every
list's value and gradient). The eager path differs from the jitted one in what it can check
on concrete values, not in its dtype handling, so float64 eagerly would add only compile time;
likewise ListMLE's two methods differ only inside one compiled function (``jax_ltr._losses.
listmle_rows``), so the eager rows take one of them.
"""

from __future__ import annotations

import numpy as np
import pytest

from ltr_common.losses import LOSSES
from parity_tests import _bounds
from parity_tests._cases import MODES, REDUCTIONS, build_cases, compare, make_inputs

RUNS = [("float32", "jit"), ("float64", "jit"), ("float32", "eager")]
PARAMS = [
    pytest.param(case, dtype, mode, id=f"{case.id}-{dtype}-{mode}")
    for case in build_cases()
    for dtype, mode in RUNS
    if not (mode == "eager" and "method=associative" in case.variant)  # eagerly, the same as scan
]


@pytest.mark.parametrize(("case", "dtype", "mode"), PARAMS)
def test_jax_equals_torch_on_real_batches(case, dtype, mode, parity_batches):
    rng = np.random.default_rng(7)
    for batch in parity_batches:
        result = compare(case, make_inputs(batch, rng, dtype), dtype, mode)
        assert result.passed, f"{case.id} {dtype} {mode}: {result.detail}"


def test_table_covers_the_api():
    functions = {case.function for case in build_cases()}
    registered = {loss.function for loss in LOSSES.values()}
    assert registered <= functions, f"registered losses without parity rows: {registered - functions}"
    assert functions == registered | {"ndcg_at_k", "mrr", "average_precision", "recall_at_k"}
    variants = {case.variant for case in build_cases() if case.function == "listmle_loss"}
    for method in ("scan", "associative"):
        for tie in ("random", "position"):
            assert f"method={method},tie_break={tie}" in variants
        assert f"method={method},tie_break=position,levels=1..5" in variants
    assert MODES["jit"] == REDUCTIONS  # the jitted runner compares every reduction
    assert {mode for _, mode in RUNS} == set(MODES)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ranking_metrics_equal(dtype, parity_batches):
    import jax
    import torch

    import jax_ltr
    import torch_ltr

    rng = np.random.default_rng(8)
    for batch in parity_batches:
        inputs = make_inputs(batch, rng, dtype)
        with jax.enable_x64(dtype == "float64"):
            ours = jax.jit(jax_ltr.ranking_metrics)(inputs.scores, inputs.labels, where=inputs.where)
            ours = {k: np.asarray(v) for k, v in ours.items()}
        scores, labels, where = (torch.from_numpy(x) for x in (inputs.scores, inputs.labels, inputs.where))
        theirs = {k: v.numpy() for k, v in torch_ltr.ranking_metrics(scores, labels, where=where).items()}
        assert set(ours) == set(theirs) == {"ndcg@5", "ndcg@10", "ndcg@20", "mrr", "map", "recall@10"}
        magnitude = _bounds.metric(inputs.scores, inputs.labels, inputs.where)[0]
        for name in ours:
            allowed = _bounds.tolerance(magnitude, dtype, reference=theirs[name])
            assert (np.abs(ours[name] - theirs[name]) <= allowed).all(), name


@pytest.mark.parametrize("quick", [True, False], ids=["quick", "optimised"])
def test_ranking_metrics_called_outside_jit_equal(quick, parity_batches, monkeypatch):
    # Called outside jit, the set runs as its own program: on a CPU, small inputs by one
    # compiled without LLVM's optimisation (jax_ltr._metrics.QUICK_METRICS_MAX), larger by
    # XLA's defaults. Both held to the reference's bound.
    import jax
    import torch

    import jax_ltr
    import torch_ltr
    from jax_ltr import _metrics

    monkeypatch.setattr(_metrics, "QUICK_METRICS_MAX", 2**16 if quick else 0)
    programs = (_metrics._ranking_metrics_quick, _metrics._ranking_metrics)
    before = [program._cache_size() for program in programs]
    rng = np.random.default_rng(9)
    for batch in parity_batches:
        inputs = make_inputs(batch, rng, "float32")
        ours = jax_ltr.ranking_metrics(inputs.scores, inputs.labels, where=inputs.where)
        scores, labels, where = (torch.from_numpy(x) for x in (inputs.scores, inputs.labels, inputs.where))
        theirs = torch_ltr.ranking_metrics(scores, labels, where=where)
        magnitude = _bounds.metric(inputs.scores, inputs.labels, inputs.where)[0]
        # Within a trace (here over constants) the set is inlined into the outer program.
        inlined = jax.jit(lambda x=inputs: jax_ltr.ranking_metrics(x.scores, x.labels, where=x.where))()
        for name, value in theirs.items():
            allowed = _bounds.tolerance(magnitude, "float32", reference=value.numpy())
            for got in (ours, inlined):
                assert (np.abs(np.asarray(got[name]) - value.numpy()) <= allowed).all(), name
    # The program the test names ran (on a CPU; elsewhere the quick one never does).
    quick_ran, optimised_ran = (
        program._cache_size() > count for program, count in zip(programs, before, strict=True)
    )
    assert quick_ran == (quick and jax.default_backend() == "cpu")
    assert optimised_ran == (not quick_ran)


def test_ranking_metrics_fall_back_to_xla_defaults_where_the_quick_options_fail(monkeypatch):
    import jax_ltr
    from jax_ltr import _metrics

    def refused(*args):  # as an XLA without one of the options refuses to compile
        raise RuntimeError("No such compile option: 'xla_cpu_use_fusion_emitters'")

    monkeypatch.setattr(_metrics, "_ranking_metrics_quick", refused)
    scores, labels = np.array([[3.0, 2.0, 1.0]]), np.array([[1.0, 5.0, 4.0]])
    assert jax_ltr.ranking_metrics(scores, labels, top_k=(2,))["ndcg@2"][0] == pytest.approx(0.5081, abs=1e-4)
    assert _metrics._ranking_metrics_quick is None  # not tried again


@pytest.mark.parametrize(("name", "options"), [("topk_listmle_loss", {"k": 5}), ("softmax_loss", {})])
def test_float32_results_at_the_bottom_of_the_range_are_within_the_flush_floor(name, options):
    # XLA flushes subnormal float32 results to zero, PyTorch keeps them: gradients made only of
    # such terms (top-k ListMLE past place k with widely spread scores; softmax probabilities
    # of exp(-95)) differ by less than the bound's flush-to-zero floor, and by more than ulps
    # of their magnitude alone.
    from parity_tests._frameworks import evaluate

    rng = np.random.default_rng(9)
    scores = np.concatenate([rng.normal(0, 30, (3, 64)), np.tile([0.0, -95.0, -96.0, -97.0], (1, 16))])
    labels = rng.integers(0, 5, scores.shape).astype("float32")
    labels[-1] = scores[-1] == 0  # softmax: all the probability on the items scored 0
    scores = scores.astype("float32")
    where = np.ones(scores.shape, bool)
    (_, ours), (_, theirs) = (
        evaluate(fw, name, scores, labels, reduction="sum", **options) for fw in ("jax", "torch")
    )
    magnitude = _bounds.reduce(_bounds.loss_parts(name, scores, labels, where, options=options), None, "sum")[
        1
    ]
    diff = np.abs(ours.astype(np.float64) - theirs)
    assert (diff <= _bounds.tolerance(magnitude, "float32")).all()
    assert (diff > _bounds.ULPS * np.finfo(np.float32).eps * magnitude).any()  # the floor is needed
