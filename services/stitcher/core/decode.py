"""Decode raw channel-event records: CloudEvents mapping, validation and bad-input classification.

Pure: bytes + headers + the current time in, a valid event or a ``Rejected`` (the dead-letter
reason) out. Details never quote an identifier value, so they are safe for headers and logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from services.common.contracts import CHANNEL_EVENT, validator
from services.common.timeutil import parse_rfc3339_ms

REASONS = ("malformed_json", "schema_violation", "oversized", "bad_timestamp", "no_identifier")
CLOUDEVENTS_JSON = "application/cloudevents+json"


@dataclass(frozen=True, slots=True)
class DecodePolicy:
    max_bytes: int = 65536
    max_future_skew_ms: int = 5 * 60_000
    max_event_age_ms: int = 365 * 86_400_000


DEFAULT_POLICY = DecodePolicy()


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Decoded:
    event: dict[str, Any]
    occurred_ms: int


def decode(value: bytes | None, headers: Mapping[str, bytes], now_ms: int,
           policy: DecodePolicy = DEFAULT_POLICY) -> Decoded | Rejected:
    """Turn one record into a valid channel event (CloudEvents unwrapped) or a dead-letter reason."""
    if value is None:
        return Rejected("malformed_json", "empty record (tombstone)")
    if len(value) > policy.max_bytes:
        return Rejected("oversized", f"{len(value)} bytes > {policy.max_bytes}")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Rejected("malformed_json", str(exc)[:200])
    if not isinstance(body, dict):
        return Rejected("schema_violation", f"(root): expected an object, got {type(body).__name__}")
    event = from_cloudevent(body, headers)
    if not validator(CHANNEL_EVENT).is_valid(event):
        return _classify_violation(event)
    ms = event_time_ms(event["occurred_at"])
    if ms > now_ms + policy.max_future_skew_ms:
        return Rejected("bad_timestamp", f"occurred_at {ms - now_ms} ms in the future")
    if ms < now_ms - policy.max_event_age_ms:
        return Rejected("bad_timestamp", f"occurred_at older than {policy.max_event_age_ms} ms")
    return Decoded(event, ms)


def event_time_ms(text: str) -> int:
    """parse_rfc3339_ms, with the C-speed fromisoformat first (the schema already checked the format)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return parse_rfc3339_ms(text)
    if parsed.tzinfo is None:
        return parse_rfc3339_ms(text)  # raises: an offset is required
    return int(parsed.timestamp() * 1000)


def from_cloudevent(body: dict[str, Any], headers: Mapping[str, bytes]) -> dict[str, Any]:
    """The channel event inside a structured or binary-mode CloudEvent (a plain event is returned as is)."""
    structured = "specversion" in body and isinstance(body.get("data"), dict)
    if not structured and "content-type" in headers:
        content_type = headers["content-type"].decode(errors="replace").split(";")[0].strip().lower()
        structured = content_type == CLOUDEVENTS_JSON
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


def _classify_violation(event: dict[str, Any]) -> Rejected:
    err = next(iter(validator(CHANNEL_EVENT).iter_errors(event)))
    path = [str(p) for p in err.instance_path]
    where = "/".join(path) or "(root)"
    kind = type(err.kind).__name__
    if path[:1] == ["occurred_at"]:
        return Rejected("bad_timestamp", f"{where}: {kind}")
    if path[:1] == ["identifiers"] or (not path and "identifiers" not in event):
        reason = "no_identifier" if kind in ("MinProperties", "Required") else "schema_violation"
        # Never echo an identifier value: the path and the kind of violation say enough.
        return Rejected(reason, f"{where}: {kind}")
    return Rejected("schema_violation", f"{where}: {kind}: {err.message[:160]}")
