from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from services.common.contracts import JOURNEY, errors
from tests.integration.api import story
from tests.integration.api.conftest import AUTH

pytestmark = pytest.mark.integration
Client = TestClient[Any, Any]


async def get_json(client: Client, url: str, status: int = 200) -> Any:
    resp = await client.get(url, headers=AUTH)
    body = await resp.read()
    assert resp.status == status, body
    return orjson.loads(body)


@pytest.mark.parametrize(
    "query",
    [
        "phone=%2B44%207700%20900958",
        "phone=07700900958",
        "phone=%2B447700900958",
        "email=alice.smith%40example.com",
        "email=%20ALICE.SMITH%40EXAMPLE.COM%20",
    ],
)
async def test_lookup_normalises_like_the_stitcher_and_returns_a_valid_journey(
    client: Client, seeded: object, query: str
) -> None:
    doc = await get_json(client, f"/api/v1/journeys/lookup?{query}")
    assert list(errors(JOURNEY, doc)) == []
    assert doc["customer_id"] == story.ALICE
    assert [t["event_id"] for t in doc["touchpoints"]] == [e["event_id"] for e in story.ALICE_EVENTS]
    assert doc["identifiers"] == {"email": ["a***@example.com"], "phone": ["•••• 0958"]}
    assert doc["aliases"] == [story.ALICE_OLD]
    assert [a["alert_id"] for a in doc["open_alerts"]] == [story.SWITCH_ALERT["alert_id"]]
    s = doc["summary"]
    assert (s["touchpoint_count"], s["inbound"], s["outbound"], s["last_nps"]) == (6, 4, 2, 3)
    assert s["stages"] == {"purchase": "payment"} and s["last_channel"] == "sms"
    assert s["sentiment_trend"] == [0.4, -0.5, -0.7, -0.2]
    assert s["first_seen"] == "2026-11-02T08:00:00.000Z"


async def test_no_raw_identifier_leaves_the_api(client: Client, seeded: object) -> None:
    resp = await client.get("/api/v1/journeys/lookup?email=alice.smith%40example.com", headers=AUTH)
    body = (await resp.read()).decode()
    for raw in ("alice.smith", "7700900958", "7700 900958", story.ALICE_COOKIE):
        assert raw not in body.lower()


async def test_an_identifier_of_a_merged_away_id_resolves_to_the_survivor(
    client: Client,
    seeded: object,
) -> None:
    doc = await get_json(client, f"/api/v1/journeys/lookup?cookie_id={story.ALICE_COOKIE}")
    assert doc["customer_id"] == story.ALICE
    by_id = await get_json(client, f"/api/v1/journeys/{story.ALICE_OLD}")
    assert by_id["customer_id"] == story.ALICE


async def test_unknown_customers_are_404(client: Client, seeded: object) -> None:
    await get_json(client, "/api/v1/journeys/lookup?phone=%2B447700900000", 404)
    await get_json(client, "/api/v1/journeys/lookup?account_id=nope-123", 404)
    await get_json(client, "/api/v1/journeys/c_0000000000000000", 404)


async def test_the_most_recent_touchpoints_are_returned_and_marked_truncated(
    service_env: dict[str, str], seeded: object
) -> None:
    from aiohttp.test_utils import TestServer

    from services.api.app import create_app
    from tests.integration.api.conftest import api_settings

    app = create_app(api_settings(service_env, JOURNEYS_API_MAX_TOUCHPOINTS="2"))
    async with TestClient(TestServer(app)) as c:
        doc = await get_json(c, f"/api/v1/journeys/{story.ALICE}")
    assert [t["event_id"] for t in doc["touchpoints"]] == ["call-77", "nps-1"]
    assert doc["truncated"] is True and doc["summary"]["touchpoint_count"] == 6


async def test_an_alias_cycle_is_an_unknown_customer_not_a_hang(
    client: Client, seeded: Any, redis_client: Any
) -> None:
    redis_client.set(seeded.alias("c_aaaaaaaaaaaaaaaa"), "c_bbbbbbbbbbbbbbbb")
    redis_client.set(seeded.alias("c_bbbbbbbbbbbbbbbb"), "c_aaaaaaaaaaaaaaaa")
    redis_client.zadd(seeded.timeline("c_bbbbbbbbbbbbbbbb"), {"x": 1})
    await get_json(client, "/api/v1/journeys/c_aaaaaaaaaaaaaaaa", 404)


async def test_a_timeline_entry_without_its_touchpoint_is_left_out(
    client: Client, seeded: Any, redis_client: Any
) -> None:
    redis_client.zadd(seeded.timeline(story.BOB), {"b-gone": 1793610000000})
    doc = await get_json(client, f"/api/v1/journeys/{story.BOB}")
    assert [t["event_id"] for t in doc["touchpoints"]] == ["b-1", "b-2", "b-3"]
