"""Reads of the journey store for the API: two script calls per journey read, bounded alias chains.

On Redis Cluster a script may only touch the hash slot of its keys, so a lookup is two atomic steps:
resolve.lua in the identity graph's slot (identifier -> customer -> survivor, and the ids merged into
it), then read_journey.lua in that customer's slot. A merge landing between the two is seen by the
next lookup (the journey read is of the customer the lookup resolved to, as it was a moment ago).

Thin adapter: it only fetches bytes; services.api.core turns them into documents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.api.core.alerts import select_alerts
from services.api.core.journey import JourneyRecord
from services.api.core.queries import AlertFilter
from services.api.metrics import ApiMetrics
from services.api.script_calls import ReadJourneyCall, ResolveCall
from services.common.keys import Keys
from services.common.limits import MAX_ALIAS_HOPS
from services.common.redis_conn import AsyncClient

T = TypeVar("T")
TEMPLATE_CID = "@CID@"  # the key-template placeholder the Lua scripts fill in
TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """A flat HGETALL reply (field, value, field, value …) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def text(raw: bytes | str) -> str:
    """Redis answers bytes (no decode_responses: touchpoints are parsed from bytes by orjson)."""
    return raw.decode() if isinstance(raw, bytes) else raw


class StorageUnavailable(RuntimeError):
    """Redis did not answer after the retries: the API says 503, never 500."""


class JourneyReader:
    def __init__(
        self,
        redis: AsyncClient,
        keys: Keys,
        metrics: ApiMetrics,
        *,
        retries: int,
        max_touchpoints: int,
        alerts_scan: int,
        timeout_s: float,
    ) -> None:
        self.redis, self.keys, self.metrics = redis, keys, metrics
        self.retries, self.max_touchpoints, self.alerts_scan = retries, max_touchpoints, alerts_scan
        self.timeout_s = timeout_s
        self._resolve = redis.register_script(ResolveCall.source())
        self._read_journey = redis.register_script(ReadJourneyCall.source())
        self._alias_template = keys.alias(TEMPLATE_CID)
        self._aliases_of_template = keys.aliases_of(TEMPLATE_CID)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis round trip, retrying transient faults with exponential backoff.

        One deadline per round trip rather than redis-py's socket timeout, which arms one per read."""
        for attempt in range(self.retries + 1):
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await fn()
            except TRANSIENT as exc:
                if attempt == self.retries:
                    raise StorageUnavailable(f"Redis unavailable: {type(exc).__name__}") from exc
                self.metrics.retries.labels(target="redis").inc()
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    async def journey(self, *, cid: str = "", id_key: str = "") -> JourneyRecord | None:
        """The journey of a customer id, or of the customer an identifier key points at, after following
        its aliases: two script calls (the identity graph's slot, then the customer's). None when unknown."""
        k = self.keys
        start = k.alias(cid) if cid else k.identifier(id_key)
        resolve = ResolveCall(start, cid, MAX_ALIAS_HOPS, self._alias_template, self._aliases_of_template)
        found = await self.call(lambda: self._resolve(keys=resolve.keys(), args=resolve.argv()))
        if not found:
            return None
        survivor, aliases = text(found[0]), found[1]
        read = ReadJourneyCall(
            k.timeline(survivor),
            k.touchpoints(survivor),
            k.summary(survivor),
            k.masked(survivor),
            k.open_alerts(survivor),
            self.max_touchpoints,
        )
        reply = await self.call(lambda: self._read_journey(keys=read.keys(), args=read.argv()))
        timeline, tps, summary, masked, alerts = reply
        touchpoints = {e: tp for e, tp in zip(timeline, tps, strict=True) if tp is not None}
        record = JourneyRecord(
            survivor, timeline, touchpoints, _pairs(summary), _pairs(masked), aliases, _pairs(alerts)
        )
        return record if record.exists() else None

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
        ids: list[bytes] = await self.call(
            lambda: self.redis.zrevrangebyscore(  # type: ignore[arg-type,return-value]
                self.keys.recent_alerts, hi, lo, start=0, num=self.alerts_scan
            )
        )
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
        except TRANSIENT:
            return False
