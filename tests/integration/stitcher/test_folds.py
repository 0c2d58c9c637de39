"""The stitcher's store on a single Redis and on a real Redis Cluster: the same journeys as the pure model,
and merges folded across hash slots in steps that survive a crash and a race with another worker
(real Redis, no Kafka)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from services.common.keys import Keys
from services.common.redis_conn import connect, connect_sync
from services.stitcher.adapters.redis_store import RedisStitchStore, Work
from services.stitcher.core.batch import Prepared, bare_record, prepare
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.hashed_identifiers import IdentifierHasher
from services.stitcher.core.journey import DUPLICATE, WRITTEN
from services.stitcher.core.model import StitchModel
from services.stitcher.settings import parse_limits
from tests.conftest import Infra
from tests.integration.stitcher.test_lua_matches_model import prepared, random_events
from tests.unit.stitcher.events import NOW_MS

pytestmark = pytest.mark.integration
RETENTION_MS = 3_600_000


@pytest.fixture(params=["single", "cluster"])
def redis_url(request: pytest.FixtureRequest, infra: Infra) -> Iterator[str]:
    yield infra.redis_url if request.param == "single" else request.getfixturevalue("redis_cluster")


def event(eid: str, at: str = "10:00", **ids: str) -> list[Prepared]:
    body = {
        "event_id": eid,
        "occurred_at": f"2026-11-03T{at}:00Z",
        "channel": "web",
        "touchpoint": "login",
        "identifiers": ids,
    }
    return prepare(
        [bare_record(orjson.dumps(body))], IdentifierHasher(b"k", "GB"), NOW_MS, DecodePolicy()
    ).ready


def journey_of(sync: Any, keys: Keys, cid: str) -> tuple[list[str], dict[str, str]]:
    ids = [m.decode() for m in sync.zrange(keys.timeline(cid), 0, -1)]
    summary = {f.decode(): v.decode() for f, v in sync.hgetall(keys.summary(cid)).items()}
    return ids, summary


def test_batches_give_the_model_s_journeys_on_either_redis(redis_url: str, unique: str) -> None:
    rng = random.Random(7)
    values = random_events(rng, 400, 40)
    batches = [prepared(values[i : i + 50]) for i in range(0, len(values), 50)]
    keys, limits = Keys(f"t{unique}"), parse_limits("")
    model = StitchModel(limits, 8)

    async def run() -> list[list[Any]]:
        client = connect(redis_url)
        store = RedisStitchStore(client, keys, limits, 8, RETENTION_MS)
        try:
            return [await store.stitch(b, NOW_MS) for b in batches]
        finally:
            await client.aclose()

    got = asyncio.run(run())
    assert got == [model.stitch(b, NOW_MS) for b in batches]
    sync = connect_sync(redis_url)
    for cid, journey in model.journeys.journeys.items():
        ids, summary = journey_of(sync, keys, cid)
        assert ids == sorted(journey.timeline, key=lambda e: (journey.timeline[e], e))
        assert summary == journey.summary
    for loser in model.graph.alias:
        assert not sync.exists(keys.timeline(loser), keys.touchpoints(loser), keys.summary(loser))


async def two_customers(store: RedisStitchStore) -> tuple[str, str]:
    """Bob (older, e-mail) and Ana (cookie): the event carrying both merges Ana into Bob."""
    (bob,) = await store.stitch(event("b1", "09:00", email="bob@example.com"), NOW_MS)
    (ana,) = await store.stitch(event("a1", cookie_id="ck-ana"), NOW_MS)
    return bob.resolution.customer_id, ana.resolution.customer_id


async def test_a_write_into_a_customer_merged_meanwhile_is_folded(redis_url: str, unique: str) -> None:
    keys = Keys(f"t{unique}")
    client = connect(redis_url)
    mine = RedisStitchStore(client, keys, parse_limits(""), 100, RETENTION_MS)
    other = RedisStitchStore(client, keys, parse_limits(""), 100, RETENTION_MS)
    bob, ana = await two_customers(mine)
    # The other worker resolves its event to Ana, then this one merges Ana into Bob and folds her journey,
    # then the other writes its event into Ana's keys: stranded, unless its alias check folds it.
    late = event("x1", cookie_id="ck-ana")
    (res,), _ = await other.resolve(late, NOW_MS)
    assert res.customer_id == ana
    (merged,) = await mine.stitch(event("m1", email="bob@example.com", cookie_id="ck-ana"), NOW_MS)
    assert merged.resolution.customer_id == bob and merged.resolution.outcomes[0].loser == ana
    assert await other.write({ana: Work(events=[(0, late[0])])}, 1) == [WRITTEN]
    await other.settle_aliases([ana])
    sync = connect_sync(redis_url)
    ids, summary = journey_of(sync, keys, bob)
    assert sorted(ids) == ["a1", "b1", "m1", "x1"] and summary["count"] == "4"
    assert not sync.exists(*mine.journey_keys(ana))
    await client.aclose()


async def test_a_fold_cut_short_by_a_crash_is_finished_by_the_redelivery(redis_url: str, unique: str) -> None:
    keys = Keys(f"t{unique}")
    client = connect(redis_url)
    store = RedisStitchStore(client, keys, parse_limits(""), 100, RETENTION_MS)
    bob, ana = await two_customers(store)
    merging = event("m1", email="bob@example.com", cookie_id="ck-ana")
    # First delivery: merged in the graph, Ana's journey copied into Bob's, then the worker dies before
    # it drops Ana's keys (and before its commit).
    await store.resolve(merging, NOW_MS)
    taken = await store.take([ana])
    await store.write({bob: Work(folded=[taken[ana]])}, 0)
    # Redelivered: the recorded outcome replays, the fold runs again and finishes.
    (again,) = await store.stitch(merging, NOW_MS)
    assert again.resolution.customer_id == bob and again.status == WRITTEN
    sync = connect_sync(redis_url)
    ids, summary = journey_of(sync, keys, bob)
    assert sorted(ids) == ["a1", "b1", "m1"] and summary["count"] == "3"
    assert not sync.exists(*store.journey_keys(ana))
    (third,) = await store.stitch(merging, NOW_MS)
    assert third.status == DUPLICATE and journey_of(sync, keys, bob) == (ids, summary)
    await client.aclose()
