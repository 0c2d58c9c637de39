"""Test helpers: wait for a condition with a deadline instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    fn: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Call ``fn`` until it returns a truthy value, or fail after ``timeout`` seconds saying ``what``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)  # pacing between polls, not synchronisation
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")
