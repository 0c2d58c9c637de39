"""decode() accepts exactly what channel_event.v1 accepts after CloudEvents unwrapping and the time policy,
whichever path (typed fast path or the JSON Schema one) a record takes."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from services.common.contracts import CHANNEL_EVENT, validator
from services.common.records import ChannelEvent
from services.stitcher.core.decode import (
    Decoded,
    DecodePolicy,
    Rejected,
    decode,
    decode_slow,
    from_cloudevent,
)
from services.stitcher.core.scrub import AttributePolicy
from tests.unit.common.record_docs import channel_events, date_times, mutated

pytestmark = pytest.mark.unit

NOW = 1_793_700_120_000  # 2026-11-03T10:02:00Z: the corpus's good date-times fall either side of the skew
# Without the attribute scrubber: this test holds decoding to the schema; scrubbing has its own tests
# (tests/unit/security/test_scrub.py) and would rewrite the generated attribute values.
POLICY = DecodePolicy(
    max_future_skew_ms=5 * 60_000, max_event_age_ms=30 * 86_400_000, attributes=AttributePolicy(scrub=False)
)
DEFAULTS = {"schema_version": "1.0", "direction": "inbound", "visibility": "onstage"}


def exact_ms(text: str) -> int | None:
    """Epoch ms the slow, obvious way (None for what datetime cannot hold: leap seconds, year 0)."""
    m = re.match(r"^(.{10})[Tt](.{8})(?:\.(\d+))?(.*)$", text)
    assert m
    zone = "+00:00" if m.group(4) in ("Z", "z") else m.group(4)
    frac = (m.group(3) or "")[:6].ljust(6, "0")
    try:
        dt = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}.{frac}{zone}")
    except ValueError:
        return None
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    return value


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes, dict[str, bytes]]:
    """A channel event as a plain, binary-mode or structured CloudEvent record, maybe broken."""
    doc = draw(mutated(channel_events()))
    if isinstance(doc.get("identifiers"), dict):  # marked, so a detail quoting one is caught
        doc["identifiers"] = {
            k: "SECRET" + v[:8] if isinstance(v, str) else v for k, v in doc["identifiers"].items()
        }
    mode = draw(st.sampled_from(["plain", "plain", "binary", "structured", "structured_by_header", "noise"]))
    headers: dict[str, bytes] = {}
    if mode == "binary":
        for field, header in (("event_id", "ce_id"), ("occurred_at", "ce_time"), ("source", "ce_source")):
            if draw(st.booleans()):
                doc.pop(field, None)
            if draw(st.booleans()):
                value = draw(
                    st.sampled_from(["ce-1", "2026-11-03T10:01:00Z", "x" * 130, "crm"]) | date_times()
                )
                headers[header] = value.encode()
    elif mode.startswith("structured"):
        envelope: dict[str, Any] = {"specversion": "1.0", "type": "t"}
        for field, attr in (("event_id", "id"), ("occurred_at", "time"), ("source", "source")):
            if field in doc and draw(st.booleans()):
                envelope[attr] = doc.pop(field)
        envelope["data"] = doc
        if mode == "structured_by_header":
            del envelope["specversion"]
            headers["content-type"] = b"application/cloudevents+json; charset=utf-8"
        doc = envelope
    elif mode == "noise":
        headers = {"traceparent": b"00-ab", "content-type": b"application/json"}
    return json.dumps(doc, ensure_ascii=False).encode(), headers


def known_fields(doc: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as the decoder keeps it: channel_event.v1 is open, fields it does not name are dropped
    (at the top and in journey and device)."""
    named = {f.encode_name for f in msgspec.structs.fields(ChannelEvent)}
    out = {k: v for k, v in doc.items() if k in named}
    for field in ("journey", "device"):
        if isinstance(out.get(field), dict):
            out[field] = {k: v for k, v in out[field].items() if k in kept.get(field, {})}
    return out


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_decode_accepts_exactly_what_the_schema_and_the_time_policy_accept(
    record: tuple[bytes, dict[str, bytes]],
) -> None:
    value, headers = record
    body = json.loads(value)
    doc = from_cloudevent(copy.deepcopy(body), headers) if isinstance(body, dict) else body
    valid = isinstance(doc, dict) and validator(CHANNEL_EVENT).is_valid(doc)
    out = decode(value, headers, NOW, POLICY)
    event(f"{'decoded' if isinstance(out, Decoded) else out.reason}, headers: {sorted(headers)}")
    if not valid:
        assert isinstance(out, Rejected), f"accepted an event the schema refuses: {doc}"
    else:
        ms = exact_ms(doc["occurred_at"])
        if ms is not None:
            in_time = NOW - POLICY.max_event_age_ms <= ms <= NOW + POLICY.max_future_skew_ms
            assert isinstance(out, Decoded) is in_time, (out, doc["occurred_at"])
        if isinstance(out, Rejected):
            assert out.reason == "bad_timestamp"
        else:
            assert ms is None or out.occurred_ms == ms
            kept = msgspec.to_builtins(out.event)
            assert normal(kept) == normal({**DEFAULTS, **known_fields(doc, kept)})
    if isinstance(out, Rejected):
        assert out == decode_slow(value, headers, NOW, POLICY)  # the reference path's reason and detail
        assert "SECRET" not in out.detail
