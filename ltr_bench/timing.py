"""Timing in turns: the implementations of one cell, compiled and warmed up, then timed one
call each per round, in an order rotated from round to round.

A JAX call ends with ``block_until_ready``, a PyTorch call with a CUDA synchronisation where
there is a GPU. Inputs are arguments of the compiled function, never constants closed over
(XLA would fold them and the timing would lie).
"""

from __future__ import annotations

import math
import statistics
import time

import jax
import jax.numpy as jnp
import torch

from ltr_bench.registry import Impl

TORCH_DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
WARM_UP_BELOW_S = 0.05  # calls shorter than this start each turn with untimed calls ...
WARM_UP_FOR_S = 0.03  # ... for at least this long (at least one call): the default of --warm-up-s


def quartiles(times: list[float]) -> tuple[float, float, float]:
    """``(q1, median, q3)`` of ``times``, the quartiles interpolated between its values.

    Example:
      >>> quartiles([4.0, 1.0, 3.0, 2.0, 5.0])
      (2.0, 3.0, 4.0)
    """
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return q1, median, q3


def prepare_jax(impl: Impl, inputs, dtype: str, mode: str) -> dict:
    """Compile and warm up a JAX implementation: ``{"call", "compile_s", "memory_bytes", "value"}``,
    ``call()`` one blocking call."""
    scores, labels, where, pairs = inputs
    args = (jnp.asarray(scores, dtype), jnp.asarray(labels, dtype), jnp.asarray(where))
    if impl.trainer:
        args += (tuple(jnp.asarray(p) for p in pairs),)
    fn = impl.fn if mode == "forward" else jax.value_and_grad(impl.fn)
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()
    temp = getattr(memory, "temp_size_in_bytes", None) if memory is not None else None

    def call():
        return jax.block_until_ready(compiled(*args))

    for _ in range(2):
        out = call()
    value = out if mode == "forward" else out[0]
    return {"call": call, "compile_s": compile_s, "memory_bytes": temp, "value": float(value)}


def _torch_sync():
    if TORCH_DEVICE.type == "cuda":
        torch.cuda.synchronize()


def prepare_torch(impl: Impl, inputs, dtype: str, mode: str) -> dict:
    """``prepare_jax`` for a PyTorch implementation, on CUDA when there is one (torch.compile's
    compile time: the first call minus the median of the timed ones, filled in by
    ``time_cells``; memory: the peak CUDA allocation of a call over what was allocated
    before it, on CUDA only)."""
    scores, labels, where, pairs = inputs
    torch_dtype = getattr(torch, dtype)
    s = torch.tensor(scores, dtype=torch_dtype, device=TORCH_DEVICE)
    y = torch.tensor(labels, dtype=torch_dtype, device=TORCH_DEVICE)
    w = torch.tensor(where, device=TORCH_DEVICE)
    extra = ()
    if impl.trainer:
        extra = (tuple(torch.from_numpy(p).to(TORCH_DEVICE) for p in pairs),)
    fn = impl.fn
    if impl.compiled:
        torch._dynamo.reset()
        fn = torch.compile(impl.fn, dynamic=False)

    def call():
        if mode == "forward":
            with torch.no_grad():
                loss = fn(s, y, w, *extra)
        else:
            s.grad = None
            s.requires_grad_(True)
            loss = fn(s, y, w, *extra)
            loss.backward()
        _torch_sync()
        return loss

    start = time.perf_counter()
    value = call()
    first = time.perf_counter() - start
    memory = None
    if TORCH_DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        call()
        memory = torch.cuda.max_memory_allocated() - before
    call()
    return {"call": call, "first_s": first, "memory_bytes": memory, "value": float(value.detach())}


def time_cells(
    impls: list[Impl], inputs, dtype: str, mode: str, runs: int, warm_up_s: float = WARM_UP_FOR_S
) -> list[dict]:
    """Every implementation of one (loss, labels, B x L, dtype, mode) cell, prepared, then timed
    in turns: each of ``runs`` rounds times one call of every implementation, in an order
    rotated from round to round, so a slow spell of the shared machine falls on all of them
    alike and their ratios stay side by side. A turn of a call shorter than
    ``WARM_UP_BELOW_S`` starts with untimed calls of the same implementation for at least
    ``warm_up_s`` (at least one call; ``WARM_UP_FOR_S`` unless given): right after another
    framework's turn the first calls are slower, and for some milliseconds, which would
    charge the switch to whoever runs second. Measured on a 2-core CPU, ListMLE's value and
    gradient at (1024, 200) on ratings, each turn after the other framework's: JAX's call
    took 4.01 ms after one untimed call, 3.31 ms after 10 ms of them, 3.13 ms after 30 ms and
    3.09 ms after 120 ms (back to back about 3.2 ms), torch.compile's 12.05, 11.87, 11.53
    and 11.38 ms; so one untimed call still charged JAX's short call with most of the
    switch. Returns each one's
    ``{"times", "compile_s", "memory_bytes", "value"}``, or ``{"failed": why}`` for one that
    could not be prepared or called (out of device memory, say), which then leaves the turns."""
    check_warm_up_s(warm_up_s, "warm_up_s")
    prepared: list[dict | None] = []
    failed: dict[int, str] = {}
    for index, impl in enumerate(impls):
        try:
            prepared.append(
                (prepare_jax if impl.framework == "jax" else prepare_torch)(impl, inputs, dtype, mode)
            )
        except (RuntimeError, MemoryError) as error:  # torch's and XLA's out-of-memory errors among them
            prepared.append(None)
            failed[index] = _failure(error)
    warm_turn = []
    for index, ready in enumerate(prepared):
        warm_turn.append(False)
        if ready is not None:
            start = time.perf_counter()
            _call_or_fail(ready, index, failed)
            warm_turn[-1] = time.perf_counter() - start < WARM_UP_BELOW_S
    times: list[list[float]] = [[] for _ in impls]
    for round_index in range(runs):
        for offset in range(len(impls)):
            k = (round_index + offset) % len(impls)
            if k in failed:
                continue
            if warm_turn[k] and not _warm_up(prepared[k], k, failed, warm_up_s):
                continue
            start = time.perf_counter()
            if _call_or_fail(prepared[k], k, failed):
                times[k].append(time.perf_counter() - start)
    results = []
    for index, (impl, ready, timed) in enumerate(zip(impls, prepared, times, strict=True)):
        if index in failed:
            results.append({"failed": failed[index]})
            continue
        compile_s = ready.get("compile_s")
        if impl.framework == "torch":
            compile_s = max(ready["first_s"] - statistics.median(timed), 0.0) if impl.compiled else None
        memory, value = ready["memory_bytes"], ready["value"]
        results.append({"times": timed, "compile_s": compile_s, "memory_bytes": memory, "value": value})
    return results


def check_warm_up_s(seconds: float, name: str) -> None:
    """A ``ValueError`` naming ``name`` unless ``seconds`` is finite and >= 0 (an infinite
    warm-up would never end)."""
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"{name}: need finite seconds >= 0, got {seconds}")


def _warm_up(ready: dict, index: int, failed: dict[int, str], seconds: float) -> bool:
    """Untimed calls for at least ``seconds``, at least one; False if one failed."""
    start = time.perf_counter()
    while _call_or_fail(ready, index, failed):
        if time.perf_counter() - start >= seconds:
            return True
    return False


def _failure(error: BaseException) -> str:
    release_device_memory()
    return f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}"


def _call_or_fail(ready: dict, index: int, failed: dict[int, str]) -> bool:
    """One call; an error (out of device memory, say) marks implementation ``index`` failed."""
    try:
        ready["call"]()
        return True
    except (RuntimeError, MemoryError) as error:
        failed[index] = _failure(error)
        return False


def release_device_memory():
    if TORCH_DEVICE.type == "cuda":
        torch.cuda.empty_cache()
