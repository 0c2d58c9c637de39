"""A real `journeys detector` worker and the API on real Kafka and Redis: after an agent acknowledges an
alert, the detector's own later record of the same alert id on gap-alerts (its severity raised by a late
contact) carries the acknowledgement too, so a reader that keeps the last record per id never sees it
become un-acknowledged; after a resolve, the detector's record of it says closed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from tests.conftest import Infra, Topics
from tests.helpers import poll
from tests.integration.api.conftest import AUTH, api_settings
from tests.integration.gap_detector.harness import (
    AlertReader,
    Worker,
    create_topics,
    detector_env,
    produce,
    stitched,
)

pytestmark = pytest.mark.integration
Client = TestClient[Any, Any]
CID = "c_d0d0d0d0d0d0d0d0"
T = 1_793_000_000_000
H = 3_600_000


def call(eid: str, t: int) -> dict[str, Any]:
    return stitched(eid, CID, t, channel="phone", intent="billing")


@pytest.fixture
def worker(
    service_env: dict[str, str], key_prefix: str, infra: Infra, topics: Topics, tmp_path: Path
) -> Iterator[Worker]:
    create_topics(infra, topics)
    w = Worker(detector_env(service_env, key_prefix), tmp_path / "detector.log")
    w.wait_ready()
    yield w
    assert w.stop() == 0


@pytest.fixture
def alerts(infra: Infra, topics: Topics) -> Iterator[AlertReader]:
    reader = AlertReader(infra, topics.gap_alerts)
    yield reader
    reader.close()


@pytest.fixture
async def api(service_env: dict[str, str]) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(api_settings(service_env)))) as c:
        yield c


def last_of(reader: AlertReader, eid: str, **want: Any) -> dict[str, Any]:
    """The newest record about the alert triggered by ``eid`` once it has the wanted field values."""

    def found() -> dict[str, Any] | None:
        mine = [a for a in reader.read() if a["evidence"].get("event_ids", [""])[-1] == eid]
        return mine[-1] if mine and all(mine[-1].get(k) == v for k, v in want.items()) else None

    return poll(found, timeout=60, what=f"a record of {eid}'s alert with {want}")


async def test_the_detectors_later_records_carry_the_agents_handling(
    worker: Worker, alerts: AlertReader, api: Client, infra: Infra, topics: Topics
) -> None:
    produce(infra, topics.stitched_events, [call("c-1", T), call("c-2", T + H), call("c-3", T + 2 * H)])
    a3 = last_of(alerts, "c-3", type="repeat_contact", severity="medium")
    resp = await api.post(
        f"/api/v1/alerts/{a3['alert_id']}/acknowledge", json={"note": "on it"}, headers=AUTH
    )
    assert resp.status == 200, await resp.text()
    last_of(alerts, "c-3", severity="medium", handling=(await resp.json())["alert"]["handling"])

    # A late, earlier call: the detector re-publishes c-3's alert as high and raises one for c-2.
    produce(infra, topics.stitched_events, [call("c-0", T - H)])
    updated = last_of(alerts, "c-3", severity="high")
    assert updated["alert_id"] == a3["alert_id"] and updated["handling"]["state"] == "acknowledged"
    assert updated["handling"]["note"] == "on it" and updated["status"] == "open"
    a2 = last_of(alerts, "c-2", severity="medium")
    assert "handling" not in a2  # nobody handled that one

    # Resolved: the detector's next record of it (c-2 raised to high) says closed, with the handling.
    assert (await api.post(f"/api/v1/alerts/{a2['alert_id']}/resolve", headers=AUTH)).status == 200
    produce(infra, topics.stitched_events, [call("c-00", T - 2 * H)])
    closed = last_of(alerts, "c-2", severity="high")
    assert closed["status"] == "closed" and closed["handling"]["state"] == "resolved"
