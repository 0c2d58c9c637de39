"""Personas as a dimension outside the map: per-customer gap alerts carry the trigger event's persona."""

from __future__ import annotations

import pytest

from services.common import contracts
from services.gap_detector.core.alerts import customer_alert
from services.gap_detector.core.model import Entry, entry_from_event

pytestmark = pytest.mark.unit


def test_a_customer_alert_carries_the_persona_of_its_trigger_event() -> None:
    e = entry_from_event(
        {
            "occurred_at_ms": 1,
            "event_id": "e1",
            "channel": "phone",
            "direction": "inbound",
            "visibility": "onstage",
            "persona": "store_loyal",
        }
    )
    assert isinstance(e, Entry) and e.persona == "store_loyal"
    alert = customer_alert("channel_switch", "high", "c_00000001", e, {"event_ids": ["e1"]}, "t", 0)
    assert alert["persona"] == "store_loyal"
    assert contracts.first_error(contracts.GAP_ALERT, alert) is None
    anonymous = customer_alert(
        "channel_switch",
        "high",
        "c_00000001",
        Entry(1, "e2", "web", True, True),
        {"event_ids": ["e2"]},
        "t",
        0,
    )
    assert "persona" not in anonymous


def test_entries_stored_before_personas_decode_unchanged() -> None:
    import msgspec

    old = b'[1,"e1","web",true,true,"purchase","cart",null,null,null,null,null,[]]'
    assert msgspec.json.decode(old, type=Entry).persona is None


def test_the_alerts_api_filters_by_persona() -> None:
    import orjson

    from services.api.core.alerts import select_alerts
    from services.api.core.queries import BadRequest, alert_filter

    def alert(n: int, persona: str | None) -> bytes:
        doc = {
            "schema_version": "1.2",
            "alert_id": f"a_{n:032x}",
            "type": "stall",
            "severity": "high",
            "customer_id": f"c_{n:016x}",
            "detected_at": f"2026-11-01T00:00:0{n}.000Z",
            "occurred_at": "2026-11-01T00:00:00.000Z",
            "evidence": {"event_ids": [f"e{n}"]},
        }
        return orjson.dumps({**doc, "persona": persona} if persona else doc)

    raw = [alert(1, "store_loyal"), alert(2, "price_hunter"), alert(3, None)]
    found = select_alerts(raw, alert_filter({"persona": "store_loyal"}, default_limit=10), None)
    assert [a["alert_id"] for a in found] == [f"a_{1:032x}"]
    assert len(select_alerts(raw, alert_filter({}, default_limit=10), None)) == 3
    with pytest.raises(BadRequest, match="persona"):
        alert_filter({"persona": "Robert'); DROP"}, default_limit=10)
