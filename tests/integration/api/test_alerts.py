from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api import story
from tests.integration.api.conftest import AUTH

pytestmark = pytest.mark.integration
Client = TestClient[Any, Any]


async def alert_ids(client: Client, query: str = "") -> list[str]:
    resp = await client.get(f"/api/v1/alerts{query}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["count"] == len(body["alerts"])
    return [a["alert_id"] for a in body["alerts"]]


async def test_recent_alerts_newest_detection_first(client: Client, seeded: object) -> None:
    newest_first = (story.BOB_ALERT, story.SPIKE_ALERT, story.SWITCH_ALERT, story.OLD_ALERT)
    assert await alert_ids(client) == [a["alert_id"] for a in newest_first]
    assert await alert_ids(client, "?limit=1") == [story.BOB_ALERT["alert_id"]]


async def test_filter_by_type(client: Client, seeded: object) -> None:
    assert await alert_ids(client, "?type=dropoff_spike") == [story.SPIKE_ALERT["alert_id"]]
    assert await alert_ids(client, "?type=channel_switch,device_switch") == [
        story.SWITCH_ALERT["alert_id"],
        story.OLD_ALERT["alert_id"],
    ]
    assert await alert_ids(client, "?type=stall") == []


async def test_filter_by_customer_includes_the_ids_merged_into_it(client: Client, seeded: object) -> None:
    both = [story.SWITCH_ALERT["alert_id"], story.OLD_ALERT["alert_id"]]
    assert await alert_ids(client, f"?customer_id={story.ALICE}") == both
    assert await alert_ids(client, f"?customer_id={story.ALICE_OLD}") == both
    assert await alert_ids(client, f"?customer_id={story.BOB}") == [story.BOB_ALERT["alert_id"]]


async def test_filter_by_detection_time(client: Client, seeded: object) -> None:
    assert await alert_ids(client, "?since=2026-11-02T08:30:00Z&until=2026-11-02T09:00:00%2B00:00") == [
        story.SPIKE_ALERT["alert_id"]
    ]
    assert await alert_ids(client, "?until=1793606882000") == [story.OLD_ALERT["alert_id"]]  # 08:08:02Z


async def test_an_unreadable_stored_alert_is_skipped(client: Client, seeded: Any, redis_client: Any) -> None:
    redis_client.zadd(seeded.recent_alerts, {"a_broken": 4102444800000})
    redis_client.hset(seeded.alerts_by_id, "a_broken", b"{not json")
    assert len(await alert_ids(client)) == 4
