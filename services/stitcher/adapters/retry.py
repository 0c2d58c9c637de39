"""Retry transient faults with exponential backoff (never dead-letter them)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.exceptions
from aiokafka.errors import KafkaError

from services.stitcher.metrics import RETRIES

T = TypeVar("T")
log = logging.getLogger(__name__)

TRANSIENT_REDIS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                   redis.exceptions.BusyLoadingError, redis.exceptions.TryAgainError)


async def with_retry(fn: Callable[[], Awaitable[T]], target: str, *, first_delay: float = 0.05,
                     max_delay: float = 5.0, attempts: int | None = None) -> T:
    """Await fn() until it succeeds, backing off on transient Redis/Kafka errors (forever by default:
    a worker that cannot reach its stores must wait, not drop or dead-letter events)."""
    delay, tries = first_delay, 0
    while True:
        try:
            return await fn()
        except (*TRANSIENT_REDIS, KafkaError) as exc:
            tries += 1
            if attempts is not None and tries >= attempts:
                raise
            if isinstance(exc, KafkaError) and not getattr(exc, "retriable", True):
                raise
            RETRIES.labels(target=target).inc()
            log.warning("transient %s error (%s), retry %d in %.2fs", target, type(exc).__name__, tries,
                        delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
