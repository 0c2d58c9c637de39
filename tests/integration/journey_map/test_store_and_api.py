"""The journey map's adapter on the real Redis, single and Cluster: the worker's handler writes a batch
through the Lua script (one hash slot per call), the API reads the window back as a journey_map.v1
document; a redelivered batch and a merge change nothing that should not change. (The Kafka loop around
the handler is covered by tests/integration/loop.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from services.common import contracts
from services.common.kafka_loop import Record
from services.common.keys import Keys
from services.common.redis_conn import connect, connect_sync
from services.common.timeutil import format_ms
from services.gap_detector.core.definitions import load_definitions
from services.journey_map.metrics import MapMetrics
from services.journey_map.settings import JourneyMapSettings
from services.journey_map.store import erase_customers
from services.journey_map.worker import MapHandler, build
from tests.integration.api.conftest import AUTH, api_settings

pytestmark = pytest.mark.integration
T0 = 1_790_000_000_000 // 3_600_000 * 3_600_000  # a whole hour
MIN = 60_000
MAP_SCHEMA = contracts.validator(contracts.JOURNEY_MAP)


def stitched(eid: str, cid: str, t: int, stage: str, channel: str = "web", **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": "1.0",
        "event_id": eid,
        "occurred_at": format_ms(t),
        "occurred_at_ms": t,
        "channel": channel,
        "touchpoint": "tp",
        "direction": "inbound",
        "visibility": "onstage",
        "journey": {"type": "purchase", "stage": stage},
        "persona": extra.pop("persona", "price_hunter"),
        "customer_id": cid,
        "identity_keys": [],
        "stitched_at_ms": t,
        **extra,
    }


class Feed:
    def __init__(self, settings: JourneyMapSettings, handler: MapHandler) -> None:
        self.s, self.h, self.offset = settings, handler, 0

    async def send(self, topic: str, *docs: dict[str, Any]) -> None:
        records = []
        for doc in docs:
            self.offset += 1
            records.append(Record(topic, 0, self.offset, None, orjson.dumps(doc), {}))
        await self.h.handle(records, None)  # type: ignore[arg-type]  # the handler produces nothing


@pytest.fixture(params=["single", "cluster"])
def map_env(
    request: pytest.FixtureRequest, service_env: dict[str, str], key_prefix: str
) -> Iterator[dict[str, str]]:
    """The test's environment on the shared single Redis, or on a real 3-master Redis Cluster."""
    if request.param == "single":
        request.getfixturevalue("redis_client")  # removes the test's keys afterwards
        yield service_env
        return
    url = request.getfixturevalue("redis_cluster")
    yield {**service_env, "REDIS_URL": url}
    client = connect_sync(url)
    for key in list(client.scan_iter(match=f"{key_prefix}:*", count=1000)):  # every primary's keys
        client.delete(key)
    client.close()


@pytest.fixture
async def feed(map_env: dict[str, str]) -> AsyncIterator[Feed]:
    settings = JourneyMapSettings.model_validate(
        {k: v for k, v in map_env.items() if k.startswith(("JOURNEYS_", "REDIS_", "KAFKA_"))}
    )
    client = connect(settings.redis_url)
    _, handler = build(settings, load_definitions(), MapMetrics(), client)
    yield Feed(settings, handler)
    await client.aclose()


@pytest.fixture
async def api(map_env: dict[str, str]) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(api_settings(map_env)))) as c:
        yield c


async def get_map(api: TestClient[Any, Any], **params: str) -> dict[str, Any]:
    query = {"journey": "purchase", "since": str(T0 - 60 * MIN), "until": str(T0 + 600 * MIN), **params}
    resp = await api.get("/api/v1/journey-map", params=query, headers=AUTH)
    assert resp.status == 200, await resp.text()
    doc: dict[str, Any] = await resp.json()
    MAP_SCHEMA.validate(doc)
    return doc


def stage(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in doc["stages"] if s["name"] == name)


async def test_batches_merges_redelivery_and_alerts_read_back_through_the_api(
    feed: Feed, api: TestClient[Any, Any]
) -> None:
    s = feed.s
    a, b = "c_00000000000000a1", "c_00000000000000b2"
    events = [
        stitched("e1", a, T0 + 5 * MIN, "browse"),
        stitched("e2", a, T0 + 65 * MIN, "cart", "mobile_app"),
        stitched("e3", b, T0 + 70 * MIN, "checkout", "phone", sentiment=-0.5, department="sales"),
    ]
    await feed.send(s.topic_stitched_events, *events)
    await feed.send(s.topic_stitched_events, *events)  # redelivered
    doc = await get_map(api)
    assert [stage(doc, n)["entries"] for n in ("browse", "cart", "checkout")] == [1, 1, 1]
    assert doc["totals"]["in_journey_now"] == 2  # two customers so far
    assert stage(doc, "checkout")["sentiment"] == {"mean": -0.5, "count": 1}

    merge = {
        "schema_version": "1.0",
        "record_id": "m1",
        "kind": "merge",
        "survivor": a,
        "loser": b,
        "event_id": "e3",
        "recorded_at_ms": T0,
    }
    await feed.send(s.topic_identity_merges, merge)
    await feed.send(s.topic_identity_merges, merge)
    doc = await get_map(api)
    assert doc["totals"]["in_journey_now"] == 1  # one customer once merged
    assert {"from": "cart", "to": "checkout", "count": 1} in doc["transitions"]
    assert stage(doc, "cart")["conversions"] == 1

    # b's late event (still keyed by the loser) lands in the survivor; an alert on it is a pain point.
    await feed.send(
        s.topic_stitched_events, stitched("e4", b, T0 + 80 * MIN, "checkout", "phone", outcome="abandoned")
    )
    alert = {
        "schema_version": "1.0",
        "alert_id": "a_" + "1" * 32,
        "type": "stall",
        "severity": "high",
        "customer_id": b,
        "status": "open",
        "detected_at": format_ms(T0),
        "occurred_at": format_ms(T0 + 90 * MIN),
        "journey": {"type": "purchase", "stage": "checkout"},
        "evidence": {"event_ids": ["e4"]},
    }
    await feed.send(s.topic_gap_alerts, alert)
    doc = await get_map(api)
    checkout = stage(doc, "checkout")
    assert checkout["dropoffs"] == {"abandoned": 1, "stalled": 1, "total": 2}
    assert checkout["alerts"] == {"stall": 1}
    resp = await api.get(
        "/api/v1/journey-map/customers",
        headers=AUTH,
        params={"journey": "purchase", "stage": "checkout", "type": "stall"},
    )
    listed = (await resp.json())["customers"]
    assert [c["customer_id"] for c in listed] == [a] and listed[0]["persona"] == "price_hunter"

    # Filters: persona and channel cut the same figures; the window (minute edges + whole hours) too.
    assert stage(await get_map(api, persona="store_loyal"), "browse")["entries"] == 0
    assert stage(await get_map(api, channel="mobile_app"), "cart")["entries"] == 1
    assert stage(await get_map(api, channel="mobile_app"), "browse")["entries"] == 0
    assert stage(await get_map(api, since=str(T0 + 6 * MIN)), "browse")["entries"] == 0
    edges = await get_map(api, since=str(T0 + 5 * MIN), until=str(T0 + 66 * MIN))
    assert stage(edges, "cart")["entries"] == 1 and stage(edges, "browse")["entries"] == 1

    await feed.send(s.topic_gap_alerts, {**alert, "status": "closed"})  # retracted
    doc = await get_map(api)
    assert stage(doc, "checkout")["dropoffs"]["stalled"] == 0

    # Erasure: the customer (survivor and the id merged into it) leaves the map, counters and all, through
    # DELETE /api/v1/customers (the identity graph links the ids, as the stitcher leaves it).
    await feed.send(s.topic_gap_alerts, {**alert, "alert_id": "a_" + "2" * 32})
    keys, redis = Keys(s.key_prefix), feed.h.store.client
    await redis.sadd(keys.aliases_of(a), b)  # type: ignore[misc]
    await redis.set(keys.alias(b), a)
    await redis.hset(keys.summary(a), "count", "4")  # type: ignore[misc]
    resp = await api.delete(f"/api/v1/customers/{b}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert await erase_customers(feed.h.store, [a, b], feed.h.bounds) == 0  # nothing left to erase
    assert all(state is None for state, _ in (await feed.h.store.load([a, b])).values())
    doc = await get_map(api)
    assert doc["totals"] == {"entries": 0, "touches": 0, "in_journey_now": 0, "dropoffs": 0, "open_alerts": 0}
    resp = await api.get(
        "/api/v1/journey-map/customers",
        headers=AUTH,
        params={"journey": "purchase", "stage": "checkout", "type": "stall"},
    )
    assert (await resp.json())["customers"] == []


async def test_bad_parameters_are_400s_and_the_page_shell_is_open(api: TestClient[Any, Any]) -> None:
    for params in (
        {"journey": "nope"},
        {"persona": "x"},
        {"since": "yesterday"},
        {"limit": "3"},
        {"since": "2000", "until": "1000"},
    ):
        resp = await api.get("/api/v1/journey-map", params=params, headers=AUTH)
        assert resp.status == 400, params
    assert (await api.get("/api/v1/journey-map")).status == 401
    resp = await api.get("/api/v1/journey-map/customers", params={"journey": "purchase"}, headers=AUTH)
    assert resp.status == 400
    page = await api.get("/map")
    assert page.status == 200 and "journey map" in (await page.text()).lower()


async def test_a_write_planned_on_a_stale_state_is_refused(feed: Feed, api: TestClient[Any, Any]) -> None:
    from services.journey_map.core.contribution import Delta
    from services.journey_map.store import Conflict

    s, cid = feed.s, "c_00000000000000c3"
    await feed.send(s.topic_stitched_events, stitched("x1", cid, T0 + 5 * MIN, "browse"))
    store = feed.h.store
    ((_, gen),) = (await store.load([cid])).values()
    await feed.send(s.topic_stitched_events, stitched("x2", cid, T0 + 6 * MIN, "cart"))  # another worker
    with pytest.raises(Conflict):
        await store.write(store.keys.shard_of(cid), {cid: (b'{"v":1}', gen)}, [Delta()])
    # A batch that lost the race fails whole (the loop retries it) and its retry plans on the new state.
    await feed.send(s.topic_stitched_events, stitched("x3", cid, T0 + 7 * MIN, "checkout"))
    doc = await get_map(api)
    assert [stage(doc, n)["entries"] for n in ("browse", "cart", "checkout")] == [1, 1, 1]
