"""The API on a real Redis Cluster: every script stays in one hash slot, so lookups (by identifier, by
customer id, through a merge) and erasure work as on a single Redis, and an interrupted erasure completes
when repeated."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from services.api.core import erase as erase_plan
from services.common.keys import Keys
from services.common.redis_conn import connect_sync
from services.stitcher.core.identifiers import lookup_key
from tests.integration.api import story
from tests.integration.api.conftest import AUTH, api_settings
from tests.integration.api.journey_seed import add_recent_alerts, seed

pytestmark = pytest.mark.integration
Client = TestClient[Any, Any]


@pytest.fixture
def cluster_env(service_env: dict[str, str], redis_cluster: str) -> dict[str, str]:
    return {**service_env, "REDIS_URL": redis_cluster}


@pytest.fixture
def cluster_redis(redis_cluster: str, key_prefix: str) -> Iterator[Any]:
    client = connect_sync(redis_cluster)
    yield client
    for key in list(client.scan_iter(match=f"{key_prefix}:*", count=1000)):  # every primary's keys
        client.delete(key)
    client.close()


@pytest.fixture
def seeded(cluster_redis: Any, key_prefix: str, cluster_env: dict[str, str]) -> Keys:
    keys = Keys(key_prefix)
    seed(cluster_redis, keys, api_settings(cluster_env), [story.alice(), story.alice_old(), story.bob()])
    add_recent_alerts(cluster_redis, keys, story.ALL_ALERTS)
    cluster_redis.zadd(
        keys.timers,
        {f"{story.ALICE}|purchase": 1, f"{story.ALICE_OLD}|onboarding": 2, f"{story.BOB}|support": 3},
    )
    return keys


@pytest.fixture
async def client(cluster_env: dict[str, str]) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(api_settings(cluster_env)))) as c:
        yield c


async def get_json(client: Client, url: str, status: int = 200) -> Any:
    resp = await client.get(url, headers=AUTH)
    body = await resp.read()
    assert resp.status == status, body
    return orjson.loads(body)


def test_the_story_spans_several_nodes(seeded: Keys, cluster_redis: Any) -> None:
    keys = [seeded.timeline(c) for c in (story.ALICE, story.ALICE_OLD, story.BOB)] + [seeded.idg]
    assert len({cluster_redis.get_node_from_key(k).name for k in keys}) > 1


async def test_lookups_on_a_cluster(client: Client, seeded: Keys) -> None:
    doc = await get_json(client, "/api/v1/journeys/lookup?email=alice.smith%40example.com")
    assert doc["customer_id"] == story.ALICE and doc["aliases"] == [story.ALICE_OLD]
    assert [t["event_id"] for t in doc["touchpoints"]] == [e["event_id"] for e in story.ALICE_EVENTS]
    assert doc["identifiers"] == {"email": ["a***@example.com"], "phone": ["•••• 0958"]}
    assert [a["alert_id"] for a in doc["open_alerts"]] == [story.SWITCH_ALERT["alert_id"]]
    assert (await get_json(client, f"/api/v1/journeys/{story.BOB}"))["customer_id"] == story.BOB
    # After a merge: the merged-away id and an identifier still linked to it resolve to the survivor.
    assert (await get_json(client, f"/api/v1/journeys/{story.ALICE_OLD}"))["customer_id"] == story.ALICE
    doc = await get_json(client, f"/api/v1/journeys/lookup?cookie_id={story.ALICE_COOKIE}")
    assert doc["customer_id"] == story.ALICE
    await get_json(client, "/api/v1/journeys/lookup?phone=%2B447700900000", 404)
    await get_json(client, "/api/v1/journeys/c_0000000000000000", 404)
    alerts = await get_json(client, f"/api/v1/alerts?customer_id={story.ALICE}")
    assert {a["customer_id"] for a in alerts["alerts"]} == {story.ALICE, story.ALICE_OLD}


async def test_an_alias_cycle_on_a_cluster_is_unknown(
    client: Client, seeded: Keys, cluster_redis: Any
) -> None:
    cluster_redis.set(seeded.alias("c_aaaaaaaaaaaaaaaa"), "c_bbbbbbbbbbbbbbbb")
    cluster_redis.set(seeded.alias("c_bbbbbbbbbbbbbbbb"), "c_aaaaaaaaaaaaaaaa")
    await get_json(client, "/api/v1/journeys/c_aaaaaaaaaaaaaaaa", 404)


def everything(redis: Any, prefix: str, audit: str) -> list[str]:
    return sorted(k.decode() for k in redis.scan_iter(match=f"{prefix}:*", count=1000) if k.decode() != audit)


async def test_erase_on_a_cluster_leaves_nothing_of_the_customer(
    client: Client,
    seeded: Keys,
    cluster_redis: Any,
    key_prefix: str,
    cluster_env: dict[str, str],
) -> None:
    settings = api_settings(cluster_env)
    alice_ids = [
        lookup_key(settings, t, v)
        for t, v in (
            ("phone", story.ALICE_PHONE),
            ("email", story.ALICE_EMAIL),
            ("cookie_id", story.ALICE_COOKIE),
        )
    ]
    cluster_redis.zadd(seeded.timers_inflight, {f"{story.ALICE}|purchase": 9})
    cluster_redis.set(seeded.merge_outcome("call-77"), f'["{story.ALICE}",[],[]]')
    bob_before = [k for k in everything(cluster_redis, key_prefix, seeded.erasure_audit) if story.BOB in k]

    resp = await client.delete(f"/api/v1/customers/{story.ALICE_OLD}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    report = (await resp.json())["erased"]
    assert (report["customer_id"], report["aliases"], report["identifiers"]) == (story.ALICE, 1, 3)
    assert (report["timers"], report["alerts"]) == (3, 2)

    left = everything(cluster_redis, key_prefix, seeded.erasure_audit)
    assert [k for k in left if story.ALICE in k or story.ALICE_OLD in k] == []
    assert [k for k in left if any(i is not None and i in k for i in alice_ids)] == []
    assert cluster_redis.get(seeded.merge_outcome("call-77")) is None
    assert [k for k in left if story.BOB in k] == bob_before
    assert set(cluster_redis.zrange(seeded.timers, 0, -1)) == {f"{story.BOB}|support".encode()}
    assert cluster_redis.hexists(seeded.alerts_by_id, story.BOB_ALERT["alert_id"])
    assert not cluster_redis.hexists(seeded.alerts_by_id, story.SWITCH_ALERT["alert_id"])
    await get_json(client, "/api/v1/journeys/lookup?email=alice.smith%40example.com", 404)
    assert (await client.delete(f"/api/v1/customers/{story.ALICE}", headers=AUTH)).status == 404


async def test_an_interrupted_erase_completes_when_repeated(
    client: Client,
    seeded: Keys,
    cluster_redis: Any,
    key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = erase_plan.erase_steps

    def crash_after_three(*args: Any, **kwargs: Any) -> list[erase_plan.Step]:
        steps = real(*args, **kwargs)
        # A step that fails on the server after the first three ran: what a crash mid-erasure leaves.
        return [*steps[:3], erase_plan.Step(seeded.idg, [erase_plan.Command("incr", (seeded.idg,))])]

    cluster_redis.set(seeded.idg, "not a number")
    monkeypatch.setattr("services.api.erase.erase_steps", crash_after_three)
    failed = await client.delete(f"/api/v1/customers/{story.ALICE}", headers=AUTH)
    assert failed.status >= 500
    assert any(story.ALICE in k for k in everything(cluster_redis, key_prefix, seeded.erasure_audit))
    monkeypatch.setattr("services.api.erase.erase_steps", real)
    cluster_redis.delete(seeded.idg)

    assert (await client.delete(f"/api/v1/customers/{story.ALICE}", headers=AUTH)).status == 200
    left = everything(cluster_redis, key_prefix, seeded.erasure_audit)
    assert [k for k in left if story.ALICE in k or story.ALICE_OLD in k] == []
