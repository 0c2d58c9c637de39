"""The Redis scripts and the pure in-memory model agree on a random event set (real Redis, no Kafka)."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from services.common.keys import Keys
from services.stitcher.adapters.redis_store import RedisStitchStore
from services.stitcher.core.batch import Raw, outputs, prepare
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.model import InMemoryStitcher
from services.stitcher.core.stitch import IdentifierHasher
from services.stitcher.settings import parse_limits
from tests.conftest import Infra
from tests.unit.stitcher.events import BASE_MS, NOW_MS, person_ids

pytestmark = pytest.mark.integration


def random_events(rng: random.Random, n: int, people: int) -> list[bytes]:
    out = []
    for i in range(n):
        pool = person_ids(rng.randrange(people))
        picks = dict(rng.sample(pool, rng.randint(1, 3)))
        if rng.random() < 0.05:
            picks["device_id"] = f"shared-kiosk-{rng.randint(0, 1)}"  # links different people
        event: dict[str, Any] = {
            "event_id": f"e{i}", "occurred_at": f"2026-11-02T0{rng.randint(0, 9)}:00:00Z",
            "channel": rng.choice(["web", "phone", "chat"]), "touchpoint": "t", "identifiers": picks,
            "direction": rng.choice(["inbound", "outbound"]), "department": rng.choice(["a", "b"]),
        }
        if rng.random() < 0.5:
            event["journey"] = {"type": "buy", "stage": rng.choice(["x", "y"])}
        if rng.random() < 0.3:
            event["nps"] = rng.randint(0, 10)
        out.append(orjson.dumps(event))
    return out + [out[j] for j in rng.sample(range(n), n // 5)]  # redeliveries


async def redis_state(client: aioredis.Redis, keys: Keys, cids: set[str]) -> dict[str, Any]:
    state = {}
    for cid in cids:
        tl = await client.zrange(keys.timeline(cid), 0, -1)
        if tl:
            summary = await client.hgetall(keys.summary(cid))
            masked = await client.hgetall(keys.masked(cid))
            state[cid] = (tl, summary, masked)
    return state


@pytest.mark.parametrize(("seed", "limits", "cap"),
                         [(1, "", 1000), (2, "account_id=1,email=1", 4), (3, "", 3)])
async def test_lua_agrees_with_the_model(infra: Infra, key_prefix: str, redis_client: object, seed: int,
                                         limits: str, cap: int) -> None:
    assert BASE_MS < NOW_MS
    rng = random.Random(seed)
    events = random_events(rng, 200, 12)
    hasher = IdentifierHasher(b"k", "GB")
    model = InMemoryStitcher(hasher, parse_limits(limits), cap)
    model.process(events, NOW_MS)

    client = aioredis.Redis.from_url(infra.redis_url, decode_responses=True)
    keys = Keys(key_prefix)
    store = RedisStitchStore(client, keys, parse_limits(limits), cap, 60_000)
    merges = []
    for start in range(0, len(events), 17):  # uneven batches
        split = prepare([Raw(v, None, {}) for v in events[start:start + 17]], hasher, NOW_MS, DecodePolicy())
        out = outputs(split.ready, await store.resolve(split.ready, NOW_MS), NOW_MS)
        await store.write(out.stitched)
        merges += out.merges

    assert merges == model.merges
    cids = {st["customer_id"] for st in model.stitched} | set(model.graph.alias)
    expected = {cid: (sorted(j.timeline, key=lambda e: (j.timeline[e], e)), j.summary, j.masked)
                for cid, j in model.store.journeys.items()}
    assert await redis_state(client, keys, cids) == expected
    for key, cid in model.graph.ids.items():
        assert await client.get(keys.identifier(key)) == cid
    for loser, survivor in model.graph.alias.items():
        assert await client.get(keys.alias(loser)) == survivor
    for survivor, losers in model.graph.aliases_of.items():
        assert await client.smembers(keys.aliases_of(survivor)) == losers
    assert model.graph.alias, "the event set should contain merges"
    assert limits == "" or any(m["kind"] == "conflict" for m in model.merges), "and conflicts"
    assert cap > 100 or any(j.summary.get("truncated") for j in model.store.journeys.values()), "and caps"
    await client.aclose()
