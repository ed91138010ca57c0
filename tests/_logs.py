"""What a test's code logs, as the lines loguru formats from its messages alone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from loguru import logger


@contextlib.contextmanager
def logged(level: str = "WARNING") -> Iterator[list[str]]:
    """The messages logged at ``level`` or above inside the block, each ending in a newline."""
    lines: list[str] = []
    sink = logger.add(lines.append, level=level, format="{message}")
    try:
        yield lines
    finally:
        logger.remove(sink)
