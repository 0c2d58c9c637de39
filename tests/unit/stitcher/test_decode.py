"""Decoding, CloudEvents mapping and the dead-letter reasons."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from services.stitcher.core.decode import Decoded, DecodePolicy, Rejected, decode, decode_slow

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples" / "channel_event.v1"
NOW = 1_793_700_000_000 + 80 * 60_000  # 2026-11-03T11:20Z
EVENT = {
    "event_id": "e1",
    "occurred_at": "2026-11-03T10:00:00Z",
    "channel": "web",
    "touchpoint": "login",
    "identifiers": {"email": "secret.person@example.com"},
}


def reason(value: bytes | None, headers: dict[str, bytes] | None = None, **policy: int) -> str:
    out = decode(value, headers or {}, NOW, DecodePolicy(**policy))
    assert isinstance(out, Rejected)
    return out.reason


def test_a_valid_event_decodes_with_its_event_time() -> None:
    out = decode(orjson.dumps(EVENT), {}, NOW)
    assert isinstance(out, Decoded)
    assert out.occurred_ms == 1_793_700_000_000


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missing_event_id", "schema_violation"),
        ("no_identifiers", "no_identifier"),
        ("nps_eleven", "schema_violation"),
        ("sentiment_out_of_range", "schema_violation"),
        ("timestamp_without_offset", "bad_timestamp"),
        ("channel_not_a_name", "schema_violation"),
        ("identifier_type_not_a_name", "schema_violation"),
        ("too_many_identifiers", "schema_violation"),
    ],
)
def test_invalid_examples_get_their_reason(name: str, expected: str) -> None:
    assert reason((EXAMPLES / "invalid" / f"{name}.json").read_bytes()) == expected


@pytest.mark.parametrize("path", sorted((EXAMPLES / "valid").glob("*.json")), ids=lambda p: p.stem)
def test_valid_examples_decode_on_both_paths(path: Path) -> None:
    value = path.read_bytes()
    any_time = DecodePolicy(max_event_age_ms=10**13, max_future_skew_ms=10**13)
    fast, slow = decode(value, {}, NOW, any_time), decode_slow(value, {}, NOW, any_time)
    assert isinstance(fast, Decoded) and fast == slow


def test_a_later_minor_version_with_new_fields_is_decoded_not_dead_lettered() -> None:
    """channel_event.v1 is open within the major: unknown fields are dropped, open names kept as sent."""
    later = dict(
        EVENT,
        schema_version="1.7",
        locale="pt-PT",
        channel="kiosk",
        identifiers={"email": "ana@example.com", "whatsapp_id": "+351912345678"},
        journey={"type": "support", "stage": "triage", "step": 3},
        consent={"marketing": False},
    )
    out = decode(orjson.dumps(later), {}, NOW)
    assert isinstance(out, Decoded)
    assert out.event.channel == "kiosk" and out.event.schema_version == "1.7"
    assert out.event.identifiers == {"email": "ana@example.com", "whatsapp_id": "+351912345678"}
    assert out.event.journey is not None and (out.event.journey.type, out.event.journey.stage) == (
        "support",
        "triage",
    )
    assert not hasattr(out.event, "locale")


def test_malformed_oversized_and_tombstones() -> None:
    assert reason(b"{not json") == "malformed_json"
    assert reason(None) == "malformed_json"
    assert reason(b"[1, 2]") == "schema_violation"
    assert reason(orjson.dumps(EVENT), max_bytes=50) == "oversized"


def test_timestamps_beyond_the_skew_or_too_old_are_bad() -> None:
    future = dict(EVENT, occurred_at="2026-11-03T11:26:00Z")
    assert reason(orjson.dumps(future)) == "bad_timestamp"
    assert isinstance(decode(orjson.dumps(dict(EVENT, occurred_at="2026-11-03T11:24:00Z")), {}, NOW), Decoded)
    assert reason(orjson.dumps(dict(EVENT, occurred_at="2024-01-01T00:00:00Z"))) == "bad_timestamp"


def test_details_never_quote_an_identifier() -> None:
    bad = dict(EVENT, identifiers={"email": "secret.person@example.com" * 20})
    out = decode(orjson.dumps(bad), {}, NOW)
    assert isinstance(out, Rejected) and out.reason == "schema_violation"
    assert "secret" not in out.detail and "identifiers/email" in out.detail


def test_structured_cloudevent_maps_id_time_source() -> None:
    data = {k: v for k, v in EVENT.items() if k not in ("event_id", "occurred_at")}
    body = {
        "specversion": "1.0",
        "id": "ce-9",
        "source": "crm",
        "type": "x",
        "time": EVENT["occurred_at"],
        "data": data,
    }
    out = decode(orjson.dumps(body), {"content-type": b"application/cloudevents+json"}, NOW)
    assert isinstance(out, Decoded)
    assert (out.event.event_id, out.event.source) == ("ce-9", "crm")


def test_binary_cloudevent_headers_fill_missing_fields_only() -> None:
    body = {k: v for k, v in EVENT.items() if k != "event_id"}
    headers = {"ce_id": b"ce-10", "ce_time": b"2020-01-01T00:00:00Z", "ce_source": b"ivr"}
    out = decode(orjson.dumps(body), headers, NOW)
    assert isinstance(out, Decoded)
    assert out.event.event_id == "ce-10"
    assert out.event.occurred_at == EVENT["occurred_at"]  # the body wins
    assert out.event.source == "ivr"


def test_the_fast_and_the_reference_path_agree_on_a_valid_event() -> None:
    value = orjson.dumps(dict(EVENT, nps=7, sentiment=0.5, journey={"type": "buy", "stage": "pay"}))
    assert decode(value, {}, NOW) == decode_slow(value, {}, NOW)
    assert decode(value, {"content-type": b"application/json"}, NOW) == decode_slow(value, {}, NOW)


def test_a_leap_second_is_a_valid_event_time() -> None:
    # RFC 3339 and the schema allow 23:59:60 UTC; it counts as the next second (the old decoder crashed).
    out = decode(orjson.dumps(dict(EVENT, occurred_at="2026-11-02T23:59:60Z")), {}, NOW)
    assert isinstance(out, Decoded) and out.occurred_ms == 1_793_664_000_000
    assert reason(orjson.dumps(dict(EVENT, occurred_at="2026-11-02T22:59:60Z"))) == "bad_timestamp"


def test_impossible_dates_and_integral_floats_are_judged_by_the_schema() -> None:
    assert reason(orjson.dumps(dict(EVENT, occurred_at="2026-02-30T10:00:00Z"))) == "bad_timestamp"
    out = decode(orjson.dumps(dict(EVENT, nps=7.0)), {}, NOW)  # JSON Schema: 7.0 is an integer
    assert isinstance(out, Decoded) and out.event.nps == 7 and isinstance(out.event.nps, int)


def test_binary_cloudevent_source_header_obeys_the_schema() -> None:
    assert reason(orjson.dumps(EVENT), {"ce_source": b"s" * 129}) == "schema_violation"
    out = decode(orjson.dumps(dict(EVENT, source="crm")), {"ce_source": b"ivr"}, NOW)
    assert isinstance(out, Decoded) and out.event.source == "crm"
