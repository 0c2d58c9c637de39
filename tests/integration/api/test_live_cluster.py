"""Acknowledge/resolve and the live feed on a real Redis Cluster (scripts held to one slot by the server,
``#!lua``): the handling of an alert raised under a merged-away id lives in that id's slot, and the
survivor's feed still sees it change; the alerts list reads handling across slots."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from services.common.keys import Keys
from services.common.redis_conn import connect_sync
from tests.conftest import Infra, Topics
from tests.integration.api import story
from tests.integration.api.conftest import AUTH, api_settings
from tests.integration.api.journey_seed import add_recent_alerts, seed
from tests.integration.api.test_live_events import Stream
from tests.integration.gap_detector.harness import create_topics

pytestmark = pytest.mark.integration
Client = TestClient[Any, Any]


@pytest.fixture
def cluster_env(service_env: dict[str, str], redis_cluster: str) -> dict[str, str]:
    return {**service_env, "REDIS_URL": redis_cluster, "JOURNEYS_API_LIVE_POLL": "0.2"}


@pytest.fixture
def cluster_redis(redis_cluster: str, key_prefix: str) -> Iterator[Any]:
    client = connect_sync(redis_cluster)
    yield client
    for key in list(client.scan_iter(match=f"{key_prefix}:*", count=1000)):
        client.delete(key)
    client.close()


@pytest.fixture
async def client(
    cluster_env: dict[str, str], cluster_redis: Any, key_prefix: str, infra: Infra, topics: Topics
) -> AsyncIterator[Client]:
    create_topics(infra, topics)
    keys = Keys(key_prefix)
    seed(cluster_redis, keys, api_settings(cluster_env), [story.alice(), story.alice_old(), story.bob()])
    add_recent_alerts(cluster_redis, keys, story.ALL_ALERTS)
    # The merged-away id's alert, moved into the survivor's open alerts as the detector's fold does.
    old = story.OLD_ALERT
    cluster_redis.hset(keys.open_alerts(story.ALICE), old["alert_id"], orjson.dumps(old))
    assert cluster_redis.keyslot(keys.alert_handling(story.ALICE_OLD)) != cluster_redis.keyslot(
        keys.alert_handling(story.ALICE)
    )
    async with TestClient(TestServer(create_app(api_settings(cluster_env)))) as c:
        yield c


async def test_handling_across_slots_reaches_the_survivors_feed(client: Client) -> None:
    resp = await client.get(f"/api/v1/journeys/{story.ALICE_OLD}/events", headers=AUTH)  # via the alias
    assert resp.status == 200
    stream = Stream(resp)
    _, view = await stream.next()
    assert view["customer_id"] == story.ALICE and len(view["journey"]["open_alerts"]) == 2

    old = story.OLD_ALERT["alert_id"]
    ack = await client.post(f"/api/v1/alerts/{old}/acknowledge", json={"note": "merged id"}, headers=AUTH)
    assert ack.status == 200, await ack.text()
    _, view = await stream.next()
    handled = {a["alert_id"]: a.get("handling", {}).get("state") for a in view["journey"]["open_alerts"]}
    assert handled == {old: "acknowledged", story.SWITCH_ALERT["alert_id"]: None}

    switch = story.SWITCH_ALERT["alert_id"]
    assert (await client.post(f"/api/v1/alerts/{switch}/resolve", headers=AUTH)).status == 200
    _, view = await stream.next()
    assert [a["alert_id"] for a in view["journey"]["open_alerts"]] == [old]
    resp.close()

    listed = await (await client.get("/api/v1/alerts", headers=AUTH)).json()
    states = {
        a["alert_id"]: (a.get("status", "open"), a.get("handling", {}).get("state"))
        for a in listed["alerts"]
        if a.get("customer_id")
    }
    assert states[old] == ("open", "acknowledged") and states[switch] == ("closed", "resolved")
    assert states[story.BOB_ALERT["alert_id"]] == ("open", None)
