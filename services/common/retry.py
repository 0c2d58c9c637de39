"""One retry policy for every service: which faults are transient, how long to back off, how to log.

The Kafka loop retries a failed batch as it is, forever, with exponential backoff up to ``MAX_DELAY_S``:
a worker that cannot reach its stores must wait, never drop or dead-letter events. Bad input never
raises out of a handler (it is dead-lettered there), so anything else that fails a batch is either a
transient fault of Redis or Kafka or a bug; both are retried and neither is committed past.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.exceptions
from confluent_kafka import KafkaException
from prometheus_client import Counter

from services.common.logs import KEEP

T = TypeVar("T")
MAX_DELAY_S = 5.0

TRANSIENT_REDIS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TryAgainError,
)


def target_of(exc: BaseException) -> str:
    """The journeys_retries_total{target} label of a failure: redis, kafka or handler (anything else)."""
    if isinstance(exc, TRANSIENT_REDIS):
        return "redis"
    if isinstance(exc, KafkaException):
        return "kafka"
    if isinstance(exc, OSError):  # a socket fault below either client
        return "redis"
    return "handler"


def is_transient(exc: BaseException) -> bool:
    return target_of(exc) != "handler"


async def retrying(
    fn: Callable[[], Awaitable[T]], retries: Counter, *, log: logging.Logger, first_delay: float = 0.05
) -> T:
    """Await ``fn()`` until it succeeds, backing off on transient faults (anything else is raised)."""
    delay, limited = first_delay, RateLimitedLog(log)
    while True:
        try:
            return await fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            target = target_of(exc)
            retries.labels(target=target).inc()
            limited.warn(f"transient {target} fault, retrying", exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_S)


class RateLimitedLog:
    """At most one line per ``every_s`` per message; the suppressed count is said on the next line.

    A 30 s broker outage otherwise writes thousands of identical ERROR lines."""

    def __init__(self, log: logging.Logger, every_s: float = 10.0) -> None:
        self.log, self.every_s = log, every_s
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def warn(self, what: str, exc: BaseException, *, traceback: bool = False) -> None:
        now = time.monotonic()
        if now - self._last.get(what, -1e9) < self.every_s:
            self._quiet[what] = self._quiet.get(what, 0) + 1
            return
        self._last[what] = now
        quiet = self._quiet.pop(what, 0)
        more = f" ({quiet} more like it not logged)" if quiet else ""
        # KEEP: limited here already, with its own count; the handler's limiter must not hide those lines.
        self.log.warning(
            "%s: %s: %s%s",
            what,
            type(exc).__name__,
            exc,
            more,
            exc_info=exc if traceback else None,
            extra=KEEP,
        )
