"""stitch.lua behaviour the in-memory model has no notion of: key expiry (real Redis, no Kafka)."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

from services.common.keys import Keys
from services.stitcher.adapters.redis_store import TTL_SLACK_DIVISOR, RedisStitchStore
from services.stitcher.core.batch import Prepared, bare_record, prepare
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.journey import WRITTEN
from services.stitcher.core.stitch import IdentifierHasher
from services.stitcher.settings import parse_limits
from tests.conftest import Infra
from tests.unit.stitcher.events import NOW_MS

pytestmark = pytest.mark.integration

RETENTION_MS = 3_600_000
SLACK_MS = RETENTION_MS // TTL_SLACK_DIVISOR


def one(eid: str) -> list[Prepared]:
    body = {"event_id": eid, "occurred_at": "2026-11-03T10:00:00Z", "channel": "web", "touchpoint": "login",
            "identifiers": {"email": "ana@example.com"}}
    return prepare([bare_record(orjson.dumps(body))], IdentifierHasher(b"k", "GB"), NOW_MS,
                   DecodePolicy()).ready


async def test_journey_keys_live_at_least_retention_after_a_write(infra: Infra, key_prefix: str,
                                                                  redis_client: object) -> None:
    client = aioredis.Redis.from_url(infra.redis_url)
    keys = Keys(key_prefix)
    store = RedisStitchStore(client, keys, parse_limits(""), 100, RETENTION_MS)
    (first,) = await store.stitch(one("e1"), NOW_MS)
    cid = first.resolution.customer_id
    journey = [keys.timeline(cid), keys.touchpoints(cid), keys.summary(cid), keys.masked(cid)]

    async def ttls() -> list[int]:
        return [await client.pttl(k) for k in journey]

    assert all(RETENTION_MS < t <= RETENTION_MS + SLACK_MS for t in await ttls())

    # Still above retention: the next write leaves the TTLs alone (one PTTL, no PEXPIRE per batch).
    for k in journey:
        await client.pexpire(k, RETENTION_MS + SLACK_MS // 2)
    assert [s.status for s in await store.stitch(one("e2"), NOW_MS)] == [WRITTEN]
    assert all(RETENTION_MS < t <= RETENTION_MS + SLACK_MS // 2 for t in await ttls())

    # Under retention (time passed): the write re-arms all four keys.
    for k in journey:
        await client.pexpire(k, 5_000)
    assert [s.status for s in await store.stitch(one("e3"), NOW_MS)] == [WRITTEN]
    assert all(RETENTION_MS + SLACK_MS // 2 < t <= RETENTION_MS + SLACK_MS for t in await ttls())
    await client.aclose()
