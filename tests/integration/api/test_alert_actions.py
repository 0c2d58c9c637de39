"""Agents acknowledge and resolve alerts, on real Redis and Kafka, against alerts a real detector processor
raised and keeps updating: the change is stored, seen by every reader, published on gap-alerts under the
same alert id and key, and survives the detector's later updates of that alert (a late contact raising
its severity) -- a resolved alert does not come back when the detector rewrites it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.alert_actions import PUBLISHER
from services.api.alert_publisher import AlertPublisher
from services.api.app import create_app
from services.api.auth import token_hash
from services.common.keys import Keys
from tests.conftest import Infra, Topics
from tests.helpers import free_port, poll
from tests.integration.api.conftest import AUTH, api_settings
from tests.integration.api.journey_seed import Customer, seed
from tests.integration.gap_detector.harness import AlertReader, create_topics, stitched
from tests.integration.gap_detector.processors import Proc

pytestmark = pytest.mark.integration
Client = TestClient[Any, Any]

CID = "c_ac0ac0ac0ac0ac0a"
T = 1_793_000_000_000
H = 3_600_000
AGENT_TOKEN = "agent-token-0123456789abcdef"
AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}


def call(eid: str, t: int) -> dict[str, Any]:
    """An inbound phone call about billing: the third within 7 days is a repeat contact."""
    return stitched(eid, CID, t, channel="phone", intent="billing")


@pytest.fixture
def alerts_topic(infra: Infra, topics: Topics) -> Iterator[AlertReader]:
    create_topics(infra, topics)
    reader = AlertReader(infra, topics.gap_alerts)
    yield reader
    reader.close()


@pytest.fixture
async def detector(
    infra: Infra, key_prefix: str, redis_client: Any, service_env: dict[str, str]
) -> AsyncIterator[Proc]:
    first = {
        "event_id": "c-1",
        "occurred_at": "2026-11-02T08:00:00Z",
        "channel": "phone",
        "touchpoint": "call",
    }
    seed(
        redis_client,
        Keys(key_prefix),
        api_settings(service_env),
        [Customer(CID, {"account_id": "acc-ac0"}, [first])],
    )
    proc = Proc(infra.redis_url, key_prefix)
    yield proc
    await proc.close()


@pytest.fixture
async def api(service_env: dict[str, str], alerts_topic: AlertReader) -> AsyncIterator[Client]:
    settings = api_settings(service_env, JOURNEYS_API_TOKENS=f"agent-7:agent:{token_hash(AGENT_TOKEN)}")
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


async def open_alerts(api: Client) -> dict[str, dict[str, Any]]:
    resp = await api.get(f"/api/v1/journeys/{CID}", headers=AUTH)
    assert resp.status == 200
    return {a["alert_id"]: a for a in (await resp.json())["open_alerts"]}


async def act(api: Client, aid: str, action: str, note: str = "", headers: dict[str, str] = AGENT) -> Any:
    return await api.post(f"/api/v1/alerts/{aid}/{action}", json={"note": note}, headers=headers)


def trigger_of(proc: Proc, eid: str) -> dict[str, Any]:
    return next(a for a in reversed(proc.published) if a["evidence"]["event_ids"][-1] == eid)


async def test_ack_is_published_and_survives_the_detectors_later_updates(
    api: Client, detector: Proc, alerts_topic: AlertReader
) -> None:
    await detector.events([call("c-1", T), call("c-2", T + H), call("c-3", T + 2 * H)])
    a3 = trigger_of(detector, "c-3")
    assert a3["type"] == "repeat_contact" and a3["severity"] == "medium"
    assert set(await open_alerts(api)) == {a3["alert_id"]}

    resp = await act(api, a3["alert_id"], "acknowledge", "calling back, ref +44 7700 900958")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["changed"] is True
    handling = body["alert"]["handling"]
    assert handling["state"] == "acknowledged" and handling["by"] == "agent-7"
    assert handling["note"] == "calling back, ref [redacted]"  # no phone number into Redis or Kafka

    # Published under the same id and record key as the detector's records, after them.
    records = poll(
        lambda: [r for r in alerts_topic.reader.read() if b"handling" in r.value()],
        timeout=15,
        what="the API's record on gap-alerts",
    )
    assert records[0].key() == CID.encode()
    published = [a for a in alerts_topic.read() if a["alert_id"] == a3["alert_id"]]
    assert published[-1]["handling"]["state"] == "acknowledged" and published[-1]["status"] == "open"
    assert dict(records[0].headers())["ce_source"] == b"journeys/api"

    # Another agent sees it (another read path: the alerts list).
    listed = await (await api.get(f"/api/v1/alerts?customer_id={CID}", headers=AGENT)).json()
    mine = [a for a in listed["alerts"] if a["alert_id"] == a3["alert_id"]]
    assert [a["handling"]["state"] for a in mine] == ["acknowledged"]

    # The detector updates the same alert (a late earlier call makes c-3 the 4th contact: high) and raises
    # one for c-2: the update does not carry the handling, the API still shows it.
    await detector.events([call("c-0", T - H)])
    assert trigger_of(detector, "c-3")["severity"] == "high" and "handling" not in trigger_of(detector, "c-3")
    a2 = trigger_of(detector, "c-2")
    shown = await open_alerts(api)
    assert shown[a3["alert_id"]]["severity"] == "high"
    assert shown[a3["alert_id"]]["handling"]["state"] == "acknowledged"
    assert "handling" not in shown[a2["alert_id"]]

    # Resolved stays resolved when the detector rewrites the alert into its open set (c-2 -> high).
    resp = await act(api, a2["alert_id"], "resolve", "duplicate of the c-3 call")
    assert resp.status == 200 and (await resp.json())["alert"]["status"] == "closed"
    await detector.events([call("c-00", T - 2 * H)])
    assert trigger_of(detector, "c-2")["severity"] == "high"
    shown = await open_alerts(api)
    assert a2["alert_id"] not in shown and shown[a3["alert_id"]]["handling"]["state"] == "acknowledged"
    closed = poll(
        lambda: [a for a in alerts_topic.read() if a["alert_id"] == a2["alert_id"] and a.get("handling")],
        timeout=15,
        what="the resolve on gap-alerts",
    )
    assert closed[-1]["status"] == "closed" and closed[-1]["handling"]["state"] == "resolved"


async def test_repeats_are_idempotent_and_going_back_is_refused(
    api: Client, detector: Proc, alerts_topic: AlertReader
) -> None:
    await detector.events([call("c-1", T), call("c-2", T + H), call("c-3", T + 2 * H)])
    aid = trigger_of(detector, "c-3")["alert_id"]
    first = await (await act(api, aid, "acknowledge", "mine")).json()
    again = await act(api, aid, "acknowledge", "no, mine", headers=AUTH)
    assert again.status == 200
    body = await again.json()
    assert body["changed"] is False and body["alert"]["handling"] == first["alert"]["handling"]
    # The repeat published the same record again (a retry after a failed publish delivers it).
    poll(
        lambda: len([a for a in alerts_topic.read() if a.get("handling")]) == 2,
        timeout=15,
        what="both records",
    )
    assert (await act(api, aid, "resolve")).status == 200
    refused = await act(api, aid, "acknowledge")
    assert refused.status == 409 and "resolved already" in (await refused.json())["error"]["reason"]
    history = (await (await act(api, aid, "resolve")).json())["alert"]["handling"]["history"]
    assert [s["state"] for s in history] == ["acknowledged", "resolved"]


async def test_errors_are_explained_and_agents_may_do_nothing_else(api: Client, detector: Proc) -> None:
    unknown = await act(api, "a_0000000000000000", "acknowledge")
    assert unknown.status == 404
    assert (await act(api, "not-an-id", "acknowledge")).status == 400
    await detector.events([call("c-1", T), call("c-2", T + H), call("c-3", T + 2 * H)])
    aid = trigger_of(detector, "c-3")["alert_id"]
    long = await act(api, aid, "resolve", "x" * 501)
    assert long.status == 400 and "500" in (await long.json())["error"]["reason"]
    bad = await api.post(f"/api/v1/alerts/{aid}/resolve", data=b"{", headers=AGENT)
    assert bad.status == 400
    assert (await api.post(f"/api/v1/alerts/{aid}/resolve", headers={})).status == 401
    # The agent role may handle alerts; erasure is still an admin's.
    assert (await api.delete(f"/api/v1/customers/{CID}", headers=AGENT)).status == 403


class Switched(AlertPublisher):
    """A publisher whose broker can be swapped while the app runs (down, then back)."""

    def __init__(self, first: AlertPublisher) -> None:
        super().__init__(first.settings)
        self.target = first

    async def publish(self, alert: dict[str, Any]) -> None:
        await self.target.publish(alert)

    def close(self) -> None:
        self.target.close()


async def test_a_broker_that_does_not_acknowledge_is_a_503_and_a_retry_publishes(
    service_env: dict[str, str], detector: Proc, alerts_topic: AlertReader
) -> None:
    settings = api_settings(service_env)
    down = api_settings(service_env, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")  # nobody listens
    app = create_app(settings)
    app[PUBLISHER] = publisher = Switched(AlertPublisher(down, timeout_s=1.0))
    async with TestClient(TestServer(app)) as api:
        await detector.events([call("c-1", T), call("c-2", T + H), call("c-3", T + 2 * H)])
        aid = trigger_of(detector, "c-3")["alert_id"]
        resp = await act(api, aid, "acknowledge", "mine", headers=AUTH)
        assert resp.status == 503 and "send it again" in (await resp.json())["error"]["reason"]
        # Stored all the same: every agent already sees who took it.
        assert (await open_alerts(api))[aid]["handling"]["state"] == "acknowledged"
        assert not [a for a in alerts_topic.read() if a.get("handling")]

        publisher.target.close()
        publisher.target = AlertPublisher(settings)  # the broker is back
        again = await act(api, aid, "acknowledge", "mine", headers=AUTH)
        assert again.status == 200 and (await again.json())["changed"] is False
        sent = poll(lambda: [a for a in alerts_topic.read() if a.get("handling")], timeout=15, what="the ack")
        assert sent[-1]["alert_id"] == aid and sent[-1]["handling"]["note"] == "mine"
