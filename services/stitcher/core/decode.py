"""Decode raw channel-event records: CloudEvents mapping, validation and bad-input classification.

Pure: bytes + headers + the current time in, a typed ``ChannelEvent`` or a ``Rejected`` (the dead-letter
reason) out. Details never quote an identifier value, so they are safe for headers and logs.

Two paths, one verdict (tests/unit/stitcher/test_decode_matches_schema.py holds them to the schema):

- fast: a plain or binary-mode event decodes straight into the msgspec Struct (~2 us);
- slow: a structured CloudEvent, or anything the fast path refuses, goes through plain JSON, the CloudEvents
  mapping and the JSON Schema, which also classifies the rejection (reason + a detail without values).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import UNSET

from services.common.contracts import CHANNEL_EVENT
from services.common.record_codec import from_valid, loads, violation
from services.common.record_patterns import channel_patterns_ok
from services.common.records import ChannelEvent, RecordError
from services.common.rfc3339 import rfc3339_ms
from services.common.timeutil import parse_rfc3339_ms
from services.stitcher.core.scrub import DEFAULT_ATTRIBUTES, AttributePolicy

# Every dlq_reason (schemas/dead_letter_headers.v1.json enumerates them, docs/ARCHITECTURE.md explains):
# unprocessable = handling the record raised (a limit or a bug): it goes alone, its neighbours carry on;
# undeliverable = the broker refused an output of the record (or its dead-letter copy) for good.
REASONS = (
    "malformed_json",
    "schema_violation",
    "oversized",
    "bad_timestamp",
    "no_identifier",
    "unprocessable",
    "undeliverable",
)
CLOUDEVENTS_JSON = "application/cloudevents+json"
_SOURCE_MAX = 128  # channel_event.v1 source maxLength: a ce_source header must obey it too

_replace = msgspec.structs.replace
_decode_channel = msgspec.json.Decoder(ChannelEvent).decode


@dataclass(frozen=True, slots=True)
class DecodePolicy:
    max_bytes: int = 65536
    max_future_skew_ms: int = 5 * 60_000
    max_event_age_ms: int = 365 * 86_400_000
    attributes: AttributePolicy = DEFAULT_ATTRIBUTES  # no PII through free text (core/scrub.py)


DEFAULT_POLICY = DecodePolicy()


# Structs, not frozen dataclasses: one is built per event, and a frozen dataclass's __init__ is ~4x slower;
# untracked by the garbage collector, as they hold no cycles.
class Rejected(msgspec.Struct, frozen=True, gc=False):
    reason: str
    detail: str


class Decoded(msgspec.Struct, frozen=True, gc=False):
    event: ChannelEvent
    occurred_ms: int


def decode(
    value: bytes | None, headers: Mapping[str, bytes], now_ms: int, policy: DecodePolicy = DEFAULT_POLICY
) -> Decoded | Rejected:
    """Turn one record into a valid channel event (CloudEvents unwrapped) or a dead-letter reason."""
    if value is None:
        return Rejected("malformed_json", "empty record (tombstone)")
    if len(value) > policy.max_bytes:
        return Rejected("oversized", f"{len(value)} bytes > {policy.max_bytes}")
    if headers and _structured_by_header(headers):
        return decode_slow(value, headers, now_ms, policy)
    # The fast path, inline (this runs once per event): typed decode, then the checks msgspec leaves out.
    try:
        event = _decode_channel(value)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return decode_slow(value, headers, now_ms, policy)
    ms = rfc3339_ms(event.occurred_at)
    if ms is None or not channel_patterns_ok(event):  # e.g. 2026-02-30: the schema words what is wrong
        return decode_slow(value, headers, now_ms, policy)
    if headers and event.source is UNSET and "ce_source" in headers:
        # Binary-mode CloudEvent: ce_source fills a missing source (ce_id/ce_time only matter when the body
        # lacks event_id/occurred_at, which the fast path refuses).
        source = headers["ce_source"].decode(errors="replace")
        if len(source) > _SOURCE_MAX:
            return decode_slow(value, headers, now_ms, policy)
        event = _replace(event, source=source)
    if now_ms - policy.max_event_age_ms <= ms <= now_ms + policy.max_future_skew_ms:
        return Decoded(_scrubbed(event, policy), ms)
    return _in_time(event, ms, now_ms, policy)


def decode_slow(
    value: bytes, headers: Mapping[str, bytes], now_ms: int, policy: DecodePolicy = DEFAULT_POLICY
) -> Decoded | Rejected:
    """The reference path: plain JSON, CloudEvents mapping, JSON Schema; classifies every rejection."""
    try:
        body = loads(value)
        if not isinstance(body, dict):
            return Rejected("schema_violation", f"(root): expected an object, got {type(body).__name__}")
        doc = from_cloudevent(body, headers)
        found = violation(CHANNEL_EVENT, doc)
    except RecordError as exc:  # not JSON, or nested deeper than the validator can judge
        return Rejected(exc.reason, exc.detail)
    if found is not None:
        return _classify_violation(doc, *found)
    try:
        event = from_valid(doc, ChannelEvent)
    except RecordError:  # the Struct and the schema disagree (a bug the equivalence test looks for)
        return Rejected("schema_violation", "(root): typed decoding refused a schema-valid event")
    ms = rfc3339_ms(event.occurred_at)
    if ms is None:  # unreachable: the schema checked the date-time format
        return Rejected("bad_timestamp", "occurred_at: DateTime")
    return _in_time(event, ms, now_ms, policy)


def _in_time(event: ChannelEvent, ms: int, now_ms: int, policy: DecodePolicy) -> Decoded | Rejected:
    if ms > now_ms + policy.max_future_skew_ms:
        return Rejected("bad_timestamp", f"occurred_at {ms - now_ms} ms in the future")
    if ms < now_ms - policy.max_event_age_ms:
        return Rejected("bad_timestamp", f"occurred_at older than {policy.max_event_age_ms} ms")
    return Decoded(_scrubbed(event, policy), ms)


def _scrubbed(event: ChannelEvent, policy: DecodePolicy) -> ChannelEvent:
    """The event with its attributes as the policy lets them travel: every decoded event passes here, so
    nothing downstream (stitched-events, the journey store) ever sees the raw free text."""
    if event.attributes is UNSET or not event.attributes:
        return event
    return _replace(event, attributes=policy.attributes.apply(event.attributes))


def _structured_by_header(headers: Mapping[str, bytes]) -> bool:
    content_type = headers.get("content-type")
    if content_type is None:
        return False
    return content_type.decode(errors="replace").split(";")[0].strip().lower() == CLOUDEVENTS_JSON


def event_time_ms(text: str) -> int:
    """Epoch ms of an RFC 3339 date-time (kept for callers of the old name); raises ValueError."""
    try:
        exact = rfc3339_ms(text)
    except (ValueError, IndexError):
        exact = None
    return parse_rfc3339_ms(text) if exact is None else exact


def from_cloudevent(body: dict[str, Any], headers: Mapping[str, bytes]) -> dict[str, Any]:
    """The channel event inside a structured or binary-mode CloudEvent (a plain event is returned as is)."""
    structured = "specversion" in body and isinstance(body.get("data"), dict)
    if not structured and "content-type" in headers:
        structured = _structured_by_header(headers)
    if structured:
        event = dict(body["data"]) if isinstance(body.get("data"), dict) else {}
        for attr, field in (("id", "event_id"), ("time", "occurred_at"), ("source", "source")):
            if attr in body:
                event[field] = body[attr]
        return event
    if not headers:
        return body
    for header, field in (("ce_id", "event_id"), ("ce_time", "occurred_at"), ("ce_source", "source")):
        if field not in body and header in headers:
            body[field] = headers[header].decode(errors="replace")
    return body


def _classify_violation(event: dict[str, Any], path: list[str], kind: str, message: str) -> Rejected:
    where = "/".join(path) or "(root)"
    if path[:1] == ["occurred_at"]:
        return Rejected("bad_timestamp", f"{where}: {kind}")
    if path[:1] == ["identifiers"] or (not path and "identifiers" not in event):
        reason = "no_identifier" if kind in ("MinProperties", "Required") else "schema_violation"
        # Never echo an identifier value: the path and the kind of violation say enough.
        return Rejected(reason, f"{where}: {kind}")
    return Rejected("schema_violation", f"{where}: {kind}: {message[:160]}")
