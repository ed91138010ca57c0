"""Atomic file writes, JSON, and checksummed checkpoint files with a fallback to the previous one."""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from loguru import logger

Buffers = bytes | Sequence[bytes | memoryview]  # bytes, or buffers written one after the other


def _parts(data: Buffers) -> list:
    """``data`` as the list of buffers it is written as."""
    return [data] if isinstance(data, (bytes, bytearray, memoryview)) else list(data)


_MAGIC = b"JAXLTR-CKPT-1\n"


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated, corrupt or not the reading trainer's."""


def atomic_write_bytes(path: Path, data: Buffers) -> None:
    """Write ``data`` (bytes, or buffers written one after the other) to ``path`` through a
    temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in _parts(data):
                out.write(part)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _create_temp(path: Path) -> tuple[int, str]:
    """A new file beside ``path``, opened for writing, with the mode the process's umask
    gives (``tempfile.mkstemp`` would make it 0600; reading the umask means setting it, which
    another thread creating a file at that moment would see)."""
    while True:
        tmp = str(path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp"))
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_checkpoint_bytes(paths: Path | Sequence[Path], payload: Buffers) -> None:
    """Write ``payload`` with a SHA-256 header to each of ``paths``; the previous file at each
    path is kept as ``*.prev``. ``payload``: bytes, or buffers whose concatenation is the
    payload (``jax_ltr._serialize.msgpack_buffers``: no copy of the large ones is made).

    Each new file is written in full (atomically, as ``*.next``) before the old one is moved
    aside, so a process killed mid-write leaves the current checkpoint where it was. The
    payload is hashed once for every path; each path gets a file of its own.
    """
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    parts = _parts(payload)
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    data = [_MAGIC + digest.hexdigest().encode() + b"\n", *parts]
    for path in paths:
        fresh = path.with_name(path.name + ".next")
        atomic_write_bytes(fresh, data)
        if path.exists():
            os.replace(path, previous_checkpoint(path))
        os.replace(fresh, path)


class CheckpointWriter:
    """A trainer's checkpoint writes (``write_checkpoint_bytes``), each now or on one
    background thread, in the order given.

    A training loop hands over a snapshot of its state (``payload``: made when called, on
    that thread, it serialises the snapshot) and goes on with the next steps while the
    snapshot is serialised, hashed and synced to disk. At most one write is in flight:
    every ``write`` and ``wait`` first waits for it, and re-raises its error there.
    """

    def __init__(self) -> None:
        self._thread: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def write(
        self,
        paths: Path | Sequence[Path],
        payload: Callable[[], Buffers],
        *,
        background: bool,
    ) -> None:
        self.wait()
        if not background:
            write_checkpoint_bytes(paths, payload())
            return
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="checkpoint-writer")
        self._pending = self._thread.submit(lambda: write_checkpoint_bytes(paths, payload()))

    def wait(self) -> None:
        """Until the write in flight (if any) is on disk; re-raises its error (once)."""
        pending = self._pending
        if pending is None:
            return
        try:
            pending.result()
        finally:
            self._pending = None


def read_checkpoint_bytes(path: Path) -> bytes:
    """The payload of a checkpoint written by ``write_checkpoint_bytes``, checksum verified."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    data = path.read_bytes()
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 65:
        raise CheckpointError(f"{path}: not a jax-ltr checkpoint (bad header or truncated)")
    digest, payload = data[len(_MAGIC) : len(_MAGIC) + 64], data[len(_MAGIC) + 65 :]
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise CheckpointError(
            f"{path}: checksum mismatch (truncated or corrupt); the previous checkpoint is {path.name}.prev"
        )
    return payload


def payload_writer(payload: bytes) -> str | None:
    """The trainer that wrote a checkpoint's payload, told by its first bytes: "PyTorch" for
    ``torch.save``'s zip archive, "JAX" for the JAX trainer's msgpack map, else None."""
    if payload.startswith(b"PK\x03\x04"):
        return "PyTorch"
    if payload[:1] and (0x80 <= payload[0] <= 0x8F or payload[0] in (0xDE, 0xDF)):
        return "JAX"
    return None


def undecodable(path: Path, payload: bytes, reader: str, error: Exception) -> CheckpointError:
    """The error for a checkpoint whose checksum holds but whose payload the ``reader``
    trainer ("JAX" or "PyTorch") cannot decode, naming the other trainer when it wrote it.

    A ``CheckpointError``, so that ``restore_with_fallback`` goes on to the previous checkpoint.
    """
    writer = payload_writer(payload)
    if writer is not None and writer != reader:
        return CheckpointError(
            f"{path}: a {writer} trainer's checkpoint; this is the {reader} trainer (a run's "
            "config.json must name the framework that wrote its checkpoints)"
        )
    return CheckpointError(f"{path}: not a {reader} trainer's checkpoint ({type(error).__name__}: {error})")


def _strict_json(value):
    """``value`` with NaN and infinite floats as None: JSON has no such number (Python writes
    ``NaN``, which JavaScript's and Go's parsers refuse). A metric no list counts is NaN."""
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data, *, strict: bool = True) -> None:
    """``data`` as indented JSON with sorted keys, written atomically. ``strict`` (the
    default): a NaN or infinite number as ``null``, for files any JSON parser reads
    (``metrics.json``); otherwise as Python writes them (``Infinity``), for files Python
    reads back as they were (a run's ``config.json``: ``--grad_clip_norm inf``)."""
    if strict:
        data = _strict_json(data)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=not strict) + "\n")


def previous_checkpoint(path: Path) -> Path:
    """Where ``write_checkpoint_bytes`` keeps the checkpoint before the one at ``path``."""
    return path.with_name(path.name + ".prev")


def has_checkpoint(path: Path) -> bool:
    """Whether the checkpoint at ``path``, or the one before it, is on disk."""
    return path.exists() or previous_checkpoint(path).exists()


def restore_with_fallback(restore: Callable[[Path], dict], path: Path) -> dict:
    """``restore(path)``; when that checkpoint is corrupt or truncated, the one before it.

    Checkpoints are written whole under a temporary name before the current one is moved to
    ``*.prev`` (``write_checkpoint_bytes``), so one of the two is always complete.
    """
    try:
        return restore(path)
    except CheckpointError as error:
        previous = previous_checkpoint(path)
        logger.warning("{}; loading the previous checkpoint {}", error, previous)
        try:
            return restore(previous)
        except CheckpointError as second:
            raise CheckpointError(f"{error}; and {second}") from None
