"""The stitcher scripts' behaviour the in-memory model has no notion of: key expiry (real Redis, no Kafka)."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

from services.common.keys import Keys
from services.stitcher.adapters.redis_store import TTL_SLACK_DIVISOR, RedisStitchStore
from services.stitcher.core.batch import Prepared, bare_record, prepare
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.hashed_identifiers import IdentifierHasher
from services.stitcher.core.journey import WRITTEN
from services.stitcher.settings import parse_limits
from tests.conftest import Infra
from tests.unit.stitcher.events import NOW_MS

pytestmark = pytest.mark.integration

RETENTION_MS = 3_600_000
SLACK_MS = RETENTION_MS // TTL_SLACK_DIVISOR


def one(eid: str) -> list[Prepared]:
    body = {
        "event_id": eid,
        "occurred_at": "2026-11-03T10:00:00Z",
        "channel": "web",
        "touchpoint": "login",
        "identifiers": {"email": "ana@example.com"},
    }
    return prepare(
        [bare_record(orjson.dumps(body))], IdentifierHasher(b"k", "GB"), NOW_MS, DecodePolicy()
    ).ready


async def test_journey_keys_live_at_least_retention_after_a_write(
    infra: Infra, key_prefix: str, redis_client: object
) -> None:
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


def event(eid: str, **ids: str) -> list[Prepared]:
    body = {
        "event_id": eid,
        "occurred_at": "2026-11-03T10:00:00Z",
        "channel": "web",
        "touchpoint": "login",
        "identifiers": ids,
    }
    return prepare(
        [bare_record(orjson.dumps(body))], IdentifierHasher(b"k", "GB"), NOW_MS, DecodePolicy()
    ).ready


async def graph_keys(client: aioredis.Redis, keys: Keys, cid: str) -> list[str]:
    """Every identity-graph key of a customer: identifier keys, alias keys, its sets and its hash."""
    ids = [keys.identifier(k.decode()) for k in await client.smembers(keys.customer_ids(cid))]
    aliases = [keys.alias(c.decode()) for c in await client.smembers(keys.aliases_of(cid))]
    assert ids, "a customer has identifiers"
    return [*ids, *aliases, keys.customer_ids(cid), keys.customer(cid)] + (
        [keys.aliases_of(cid)] if aliases else []
    )


async def test_identity_graph_keys_expire_with_the_journey_and_are_re_armed_on_reuse(
    infra: Infra, key_prefix: str, redis_client: object
) -> None:
    client = aioredis.Redis.from_url(infra.redis_url)
    keys = Keys(key_prefix)
    store = RedisStitchStore(client, keys, parse_limits(""), 100, RETENTION_MS)

    def journey(cid: str) -> list[str]:
        return [keys.timeline(cid), keys.touchpoints(cid), keys.summary(cid), keys.masked(cid)]

    async def ttls(cid: str) -> dict[str, int]:
        return {k: await client.pttl(k) for k in [*journey(cid), *await graph_keys(client, keys, cid)]}

    def armed(found: dict[str, int], low: int = RETENTION_MS) -> bool:
        """The journey keeps retention (+ up to a slack) after a write; its graph one slack longer."""
        return all(
            low + (SLACK_MS if ":{" + keys.prefix + ":idg}" in k else 0)
            < t
            <= RETENTION_MS + (2 * SLACK_MS if ":{" + keys.prefix + ":idg}" in k else SLACK_MS)
            for k, t in found.items()
        )

    async def ordered(cid: str) -> None:
        """Expiry times: the journey's <= every identity-graph key's <= the customer hash's (no identifier
        expires while its journey lives; none outlives the customer it names)."""
        at = {k: await client.execute_command("PEXPIRETIME", k) for k in await ttls(cid)}
        graph = [at[k] for k in await graph_keys(client, keys, cid)]
        assert max(at[keys.timeline(cid)], at[keys.summary(cid)]) <= min(graph), at
        assert max(graph) == at[keys.customer(cid)], at

    # A new customer: every key of its graph carries a TTL longer than the journey's (nothing lives forever).
    (ana,) = await store.stitch(event("a1", email="ana@example.com", cookie_id="ck-ana"), NOW_MS)
    cid = ana.resolution.customer_id
    assert armed(await ttls(cid)), await ttls(cid)
    await ordered(cid)
    ana_email_key = event("x", email="ana@example.com")[0].idents[0].key

    # Time passed (all under retention): reusing one identifier re-arms the journey and the whole graph,
    # the identifier the event did not carry too (it must not expire while the journey lives on).
    for k in await ttls(cid):
        await client.pexpire(k, 5_000)
    assert [s.status for s in await store.stitch(event("a2", cookie_id="ck-ana"), NOW_MS)] == [WRITTEN]
    assert armed(await ttls(cid), RETENTION_MS + SLACK_MS // 2 - SLACK_MS), await ttls(cid)
    await ordered(cid)

    # A new identifier while the journey is still above retention (no re-arm due): it gets the TTL too.
    assert [
        s.status for s in await store.stitch(event("a3", cookie_id="ck-ana", phone="+447700900123"), NOW_MS)
    ] == [WRITTEN]
    found = await ttls(cid)
    assert len(found) == 4 + 3 + 2 and armed(found), found
    await ordered(cid)

    # A merge: the loser's identifiers now name the survivor (MSET drops a TTL), its alias key is new.
    (bob,) = await store.stitch(event("b1", cookie_id="ck-bob"), NOW_MS)
    (both,) = await store.stitch(event("m1", email="ana@example.com", cookie_id="ck-bob"), NOW_MS)
    survivor = both.resolution.customer_id
    (loser,) = {cid, bob.resolution.customer_id} - {survivor}
    assert [o.kind for o in both.resolution.outcomes] == ["merge"]
    found = await ttls(survivor)
    assert keys.alias(loser) in found and keys.identifier(ana_email_key) in found and armed(found), found
    await ordered(survivor)
    # Nothing of the identity graph lives forever (the merge outcome keys have their own, shorter TTL).
    async for k in client.scan_iter(match=f"{keys.idg}:*"):
        assert await client.pttl(k) > 0, k
    await client.aclose()
