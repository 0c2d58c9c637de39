"""Reads of the journey store for the API: one pipeline per journey read, bounded alias chains.

Thin adapter: it only fetches bytes; services.api.core turns them into documents.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.api.core.alerts import select_alerts
from services.api.core.journey import JourneyRecord
from services.api.core.queries import AlertFilter
from services.api.metrics import ApiMetrics
from services.common.keys import Keys

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ALIAS_HOPS = 8  # chains are compressed by the stitcher; more hops means a cycle or corruption
TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)


def text(raw: bytes | str) -> str:
    """Redis answers bytes (no decode_responses: touchpoints are parsed from bytes by orjson)."""
    return raw.decode() if isinstance(raw, bytes) else raw


class StorageUnavailable(RuntimeError):
    """Redis did not answer after the retries: the API says 503, never 500."""


class JourneyStore:
    def __init__(self, redis: Redis, keys: Keys, metrics: ApiMetrics, *, retries: int, max_touchpoints: int,
                 alerts_scan: int) -> None:
        self.redis, self.keys, self.metrics = redis, keys, metrics
        self.retries, self.max_touchpoints, self.alerts_scan = retries, max_touchpoints, alerts_scan

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis round trip, retrying transient faults with exponential backoff."""
        for attempt in range(self.retries + 1):
            try:
                return await fn()
            except TRANSIENT as exc:
                if attempt == self.retries:
                    raise StorageUnavailable(f"Redis unavailable: {type(exc).__name__}") from exc
                self.metrics.retries.labels(target="redis").inc()
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    async def customer_of(self, id_key: str) -> str | None:
        raw = await self.call(lambda: self.redis.get(self.keys.identifier(id_key)))
        return text(raw) if raw is not None else None

    async def _read_once(self, cid: str) -> tuple[str | None, JourneyRecord]:
        k = self.keys

        def pipeline() -> Awaitable[list[Any]]:
            # Built afresh per attempt: a failed pipeline forgets its queued commands.
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(k.alias(cid))
            pipe.zrange(k.timeline(cid), -self.max_touchpoints, -1)
            pipe.hgetall(k.touchpoints(cid))
            pipe.hgetall(k.summary(cid))
            pipe.hgetall(k.masked(cid))
            pipe.smembers(k.aliases_of(cid))
            pipe.hgetall(k.open_alerts(cid))
            return pipe.execute()

        alias, timeline, tps, summary, masked, aliases, alerts = await self.call(pipeline)
        survivor = alias.decode() if alias is not None else None
        return survivor, JourneyRecord(cid, timeline, tps, summary, masked, aliases, alerts)

    async def journey(self, cid: str) -> JourneyRecord | None:
        """The record of ``cid`` or of the customer it was merged into; None when unknown."""
        for _ in range(MAX_ALIAS_HOPS):
            survivor, record = await self._read_once(cid)
            if survivor is None or survivor == cid:
                return record if record.exists() else None
            cid = survivor
        log.warning("alias chain longer than %d hops; treating the customer as unknown", MAX_ALIAS_HOPS)
        return None

    async def survivor(self, cid: str) -> str:
        """The customer ``cid`` was merged into (itself when it was not merged)."""
        for _ in range(MAX_ALIAS_HOPS):
            alias = await self.call(lambda c=cid: self.redis.get(self.keys.alias(c)))  # type: ignore[misc]
            if alias is None or text(alias) == cid:
                return cid
            cid = text(alias)
        return cid

    async def related_ids(self, survivor: str) -> set[str]:
        """``survivor`` and every id merged into it, transitively (alerts keep the id raised under)."""
        found, frontier = {survivor}, [survivor]
        for _ in range(MAX_ALIAS_HOPS):
            if not frontier:
                break

            def pipeline(level: list[str] = frontier) -> Awaitable[list[Any]]:
                pipe = self.redis.pipeline(transaction=False)
                for c in level:
                    pipe.smembers(self.keys.aliases_of(c))
                return pipe.execute()

            members = {m.decode() for ms in await self.call(pipeline) for m in ms}
            frontier = sorted(members - found)
            found |= members
        return found

    async def alerts(self, flt: AlertFilter) -> list[dict[str, Any]]:
        """Recent alerts (by detection time) passing the filter."""
        lo = "-inf" if flt.since_ms is None else flt.since_ms
        hi = "+inf" if flt.until_ms is None else flt.until_ms
        ids: list[bytes] = await self.call(lambda: self.redis.zrevrangebyscore(  # type: ignore[arg-type,return-value]
            self.keys.recent_alerts, hi, lo, start=0, num=self.alerts_scan))
        if not ids:
            return []
        raw = await self.call(lambda: self.redis.hmget(self.keys.alerts_by_id, ids))
        customers = None
        if flt.customer_id:
            customers = await self.related_ids(await self.survivor(flt.customer_id))
        return select_alerts((r for r in raw if isinstance(r, bytes)), flt, customers)

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), timeout=1.0))
        except (TimeoutError, *TRANSIENT):
            return False
