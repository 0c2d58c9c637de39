"""Personas as a dimension outside the map: per-customer gap alerts carry the trigger event's persona."""

from __future__ import annotations

import pytest

from services.common import contracts
from services.gap_detector.core.alerts import customer_alert
from services.gap_detector.core.model import Entry, entry_from_event

pytestmark = pytest.mark.unit


def test_a_customer_alert_carries_the_persona_of_its_trigger_event() -> None:
    e = entry_from_event({"occurred_at_ms": 1, "event_id": "e1", "channel": "phone", "direction": "inbound",
                          "visibility": "onstage", "persona": "store_loyal"})
    assert isinstance(e, Entry) and e.persona == "store_loyal"
    alert = customer_alert("channel_switch", "high", "c_00000001", e, {"event_ids": ["e1"]}, "t", 0)
    assert alert["persona"] == "store_loyal"
    assert contracts.first_error(contracts.GAP_ALERT, alert) is None
    anonymous = customer_alert("channel_switch", "high", "c_00000001", Entry(1, "e2", "web", True, True),
                               {"event_ids": ["e2"]}, "t", 0)
    assert "persona" not in anonymous


def test_entries_stored_before_personas_decode_unchanged() -> None:
    import msgspec

    old = b'[1,"e1","web",true,true,"purchase","cart",null,null,null,null,null,[]]'
    assert msgspec.json.decode(old, type=Entry).persona is None
