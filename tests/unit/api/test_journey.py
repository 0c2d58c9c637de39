from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from services.api.core.journey import JourneyRecord, build_journey
from services.common.contracts import JOURNEY, errors

pytestmark = pytest.mark.unit

ALERT = {
    "schema_version": "1.0",
    "alert_id": "a_0123456789abcdef",
    "type": "stall",
    "severity": "medium",
    "customer_id": "c_0123456789abcdef",
    "detected_at": "2026-11-02T09:00:00Z",
    "occurred_at": "2026-11-02T09:00:00Z",
    "evidence": {"event_ids": ["e2"], "stage": "payment"},
}


def tp(event_id: str, at: str, channel: str, **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "occurred_at": at,
            "channel": channel,
            "touchpoint": "t",
            "direction": "inbound",
            "visibility": "onstage",
            **extra,
        }
    )


def journey(rec: JourneyRecord) -> dict[str, Any]:
    """The document as the API sends it."""
    doc: dict[str, Any] = msgspec.to_builtins(build_journey(rec))
    return doc


def record(**overrides: Any) -> JourneyRecord:
    base: dict[str, Any] = {
        "customer_id": "c_0123456789abcdef",
        "timeline": [b"e1", b"e2", b"e3"],
        "touchpoints": {
            b"e3": tp("e3", "2026-11-02T08:30:00Z", "phone", sentiment=-0.6, nps=2),
            b"e1": tp("e1", "2026-11-02T08:00:00Z", "web", sentiment=0.5),
            b"e2": tp("e2", "2026-11-02T08:10:00Z", "mobile_app", sentiment=1),
        },
        "summary": {
            b"v": b"1",
            b"count": b"3",
            b"first_ms": b"1793606400000",
            b"last_ms": b"1793608200000",
            b"last_channel": b"phone",
            b"ch:web": b"1",
            b"ch:mobile_app": b"1",
            b"ch:phone": b"1",
            b"dept:billing": b"1",
            b"dept:sales": b"2",
            b"stage:purchase": b"payment",
            b"stage_ms:purchase": b"1793607000000",
            b"nps": b"2",
            b"nps_ms": b"1793608200000",
            b"in": b"3",
            b"out": b"0",
        },
        "masked": {
            b"phone:" + b"a" * 64: "•••• 0958".encode(),
            b"email:" + b"b" * 64: b"a***@example.com",
            b"email:" + b"c" * 64: b"z***@example.org",
        },
        "aliases": [b"c_2222222222222222"],
        "open_alerts": {b"a_0123456789abcdef": orjson.dumps(ALERT)},
    }
    return JourneyRecord(**{**base, **overrides})


def test_a_full_record_becomes_a_valid_journey() -> None:
    doc = journey(record())
    assert list(errors(JOURNEY, doc)) == []
    assert [t["event_id"] for t in doc["touchpoints"]] == ["e1", "e2", "e3"]  # timeline order, not hash order
    assert doc["identifiers"] == {"email": ["a***@example.com", "z***@example.org"], "phone": ["•••• 0958"]}
    s = doc["summary"]
    assert s["channels"] == {"web": 1, "mobile_app": 1, "phone": 1}
    assert s["departments"] == ["sales", "billing"]  # most frequent first
    assert s["stages"] == {"purchase": "payment"}
    assert s["sentiment_trend"] == [0.5, 1.0, -0.6]
    assert (s["first_seen"], s["last_seen"]) == ("2026-11-02T08:00:00.000Z", "2026-11-02T08:30:00.000Z")
    assert (s["last_nps"], s["inbound"], s["outbound"], s["touchpoint_count"]) == (2, 3, 0, 3)
    assert doc["aliases"] == ["c_2222222222222222"] and doc["truncated"] is False
    assert [a["alert_id"] for a in doc["open_alerts"]] == ["a_0123456789abcdef"]


def test_no_keyed_hash_or_unknown_field_is_returned() -> None:
    leaky = tp("e1", "2026-11-02T08:00:00Z", "web", identifiers={"email": "alice@example.com"})
    doc = journey(record(timeline=[b"e1"], touchpoints={b"e1": leaky}))
    body = orjson.dumps(doc)
    assert b"alice@" not in body and b"aaaa" not in body and b'identifiers":{"email":["a***' in body


def test_unreadable_or_missing_touchpoints_and_invalid_or_closed_alerts_are_skipped() -> None:
    closed = {**ALERT, "alert_id": "a_1111111111111111", "status": "closed"}
    doc = journey(
        record(
            timeline=[b"e1", b"gone", b"bad", b"e3"],
            touchpoints={
                b"e1": tp("e1", "2026-11-02T08:00:00Z", "web"),
                b"bad": b"{oops",
                b"e3": tp("e3", "2026-11-02T08:30:00Z", "phone"),
            },
            open_alerts={
                b"x": b"[]",
                b"y": orjson.dumps({"alert_id": "a_x"}),
                b"z": orjson.dumps(closed),
                b"a": orjson.dumps(ALERT),
            },
        )
    )
    assert [t["event_id"] for t in doc["touchpoints"]] == ["e1", "e3"]
    assert [a["alert_id"] for a in doc["open_alerts"]] == ["a_0123456789abcdef"]
    assert list(errors(JOURNEY, doc)) == []


def test_an_empty_summary_still_gives_a_valid_document() -> None:
    doc = journey(record(summary={}, open_alerts={}))
    assert list(errors(JOURNEY, doc)) == []
    assert doc["summary"]["touchpoint_count"] == 3 and doc["summary"]["first_seen"] is None


def test_truncated_by_the_writer_cap_or_by_the_read_limit() -> None:
    assert journey(record(summary={b"truncated": b"1"}))["truncated"] is True
    assert journey(record(summary={b"count": b"40"}))["truncated"] is True


def test_exists_only_with_journey_data() -> None:
    assert record().exists()
    assert not record(timeline=[], summary={}, masked={}).exists()
