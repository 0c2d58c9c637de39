"""The live page's feed on real Redis: GET /api/v1/journeys/{id}/events sends the whole view at once, then
again within a second of a new touchpoint (written as the stitcher stores it), of an alert a real detector
processor raises, and of an agent's acknowledgement; what comes next rides along. The stream is audited
before its first byte; an unknown customer is a plain 404."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from services.api.audit import access_audit
from services.common.keys import Keys
from services.common.timeutil import format_ms, now_ms
from tests.conftest import Infra, Topics
from tests.integration.api.conftest import AUTH, api_settings
from tests.integration.api.journey_seed import Customer, seed
from tests.integration.gap_detector.harness import create_topics, stitched
from tests.integration.gap_detector.processors import Proc

pytestmark = pytest.mark.integration
Client = TestClient[Any, Any]
CID = "c_11fe11fe11fe11fe"
LIVE_WITHIN_S = 2.0  # the page promises a second; a loaded 2-core test machine gets some slack


def event(eid: str, at_ms: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": eid,
        "occurred_at": format_ms(at_ms),
        "channel": "phone",
        "touchpoint": "call",
        "intent": "billing",
        **extra,
    }


class Stream:
    """Reads server-sent events off a response."""

    def __init__(self, resp: ClientResponse) -> None:
        self.resp = resp

    async def next(self, timeout: float = 5.0) -> tuple[str, Any]:
        name, data = "", b""
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.resp.content.readline()).rstrip(b"\n")
                if line.startswith(b"event: "):
                    name = line[7:].decode()
                elif line.startswith(b"data: "):
                    data = line[6:]
                elif not line and name:
                    return name, orjson.loads(data)


@pytest.fixture
async def api(service_env: dict[str, str], infra: Infra, topics: Topics) -> AsyncIterator[Client]:
    create_topics(infra, topics)
    settings = api_settings(service_env, JOURNEYS_API_LIVE_POLL="0.2")
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


async def test_the_view_follows_touchpoints_alerts_and_acks(
    api: Client, redis_client: Any, key_prefix: str, service_env: dict[str, str], infra: Infra
) -> None:
    keys, settings = Keys(key_prefix), api_settings(service_env)
    t0 = now_ms() - 3_600_000
    events = [event("c-1", t0, journey={"type": "purchase", "stage": "checkout"})]
    seed(redis_client, keys, settings, [Customer(CID, {"account_id": "acc-live"}, events)])
    resp = await api.get(f"/api/v1/journeys/{CID}/events", headers=AUTH)
    assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
    stream = Stream(resp)
    name, view = await stream.next()
    assert name == "journey" and view["customer_id"] == CID and len(view["journey"]["touchpoints"]) == 1
    [nxt] = view["next"]
    assert nxt["journey"] == "purchase" and nxt["stage"] == "checkout" and nxt["next_stages"] == ["payment"]
    assert 3599 <= 7200 - nxt["seconds_left"] <= 3700  # 2 h SLA, entered an hour ago
    # Audited before the first byte, as a 200 of the events route.
    audit = redis_client.xrange(access_audit(keys))
    assert [e[1][b"route"] for e in audit] == [b"/api/v1/journeys/{customer_id}/events"]

    # A new touchpoint, stored as the stitcher stores it: on screen within a second, no reload.
    events.append(event("c-2", t0 + 60_000, journey={"type": "purchase", "stage": "payment"}))
    started = time.monotonic()
    seed(redis_client, keys, settings, [Customer(CID, {"account_id": "acc-live"}, events)])
    name, view = await stream.next()
    took = time.monotonic() - started
    assert [t["event_id"] for t in view["journey"]["touchpoints"]] == ["c-1", "c-2"]
    assert view["next"][0]["stage"] == "payment" and took < LIVE_WITHIN_S, took

    # An alert the detector raises (three calls about billing): pushed too.
    proc = Proc(infra.redis_url, key_prefix)
    try:
        started = time.monotonic()
        await proc.events(
            [stitched(f"c-{n}", CID, t0 + n * 60_000, channel="phone", intent="billing") for n in (1, 2, 3)]
        )
        name, view = await stream.next()
        took = time.monotonic() - started
        [alert] = view["journey"]["open_alerts"]
        assert alert["type"] == "repeat_contact" and took < LIVE_WITHIN_S, took

        # Another agent acknowledges it: every open page shows who took it.
        started = time.monotonic()
        ack = await api.post(
            f"/api/v1/alerts/{alert['alert_id']}/acknowledge", json={"note": "mine"}, headers=AUTH
        )
        assert ack.status == 200
        name, view = await stream.next()
        took = time.monotonic() - started
        assert view["journey"]["open_alerts"][0]["handling"]["note"] == "mine" and took < LIVE_WITHIN_S
    finally:
        await proc.close()

    # Erased while on screen: the page is told, and the stream ends.
    redis_client.delete(*keys.customer_scoped(CID))
    assert await stream.next() == ("gone", {"customer_id": CID})
    resp.close()


async def test_unknown_customer_and_missing_token(api: Client) -> None:
    assert (await api.get("/api/v1/journeys/c_0000000000000000/events", headers=AUTH)).status == 404
    assert (await api.get(f"/api/v1/journeys/{CID}/events")).status == 401
    assert (await api.get("/api/v1/journeys/nope/events", headers=AUTH)).status == 400


async def test_what_comes_next_on_its_own(
    api: Client, redis_client: Any, key_prefix: str, service_env: dict[str, str]
) -> None:
    t0 = now_ms() - 3 * 3_600_000
    seed(
        redis_client,
        Keys(key_prefix),
        api_settings(service_env),
        [
            Customer(
                CID,
                {"account_id": "acc-n"},
                [
                    event("n-1", t0, journey={"type": "purchase", "stage": "payment"}),
                    event("n-2", t0, journey={"type": "upgrade", "stage": "converted"}),
                ],
            )
        ],
    )
    body = await (await api.get(f"/api/v1/journeys/{CID}/next", headers=AUTH)).json()
    [j] = body["journeys"]  # upgrade is finished
    assert j["journey"] == "purchase" and j["seconds_left"] < -7000  # 1 h SLA, 3 h ago: overdue
