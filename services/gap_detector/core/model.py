"""The detector's compact view of a stitched event, and errors as values for bad input.

A buffered entry keeps only what the rules read, so a customer's buffer stays small in Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from msgspec import Struct

from services.common.records import StitchedEvent


class Entry(Struct, array_like=True, gc=False):
    """One event of a customer as the rules see it. ``alerted``: '<type>:<severity>' it raised.

    Stored as a positional JSON array (``array_like``: ~3x smaller than an object with field names) and
    decoded straight into this type by msgspec (state.py): the buffer is the bulk of a customer's state.
    No reference cycles (strings and a tuple of strings), so the garbage collector need not track it."""

    t: int
    id: str
    channel: str
    inbound: bool
    onstage: bool
    journey: str | None = None
    stage: str | None = None
    intent: str | None = None
    outcome: str | None = None
    department: str | None = None
    device_key: str | None = None
    device_type: str | None = None
    alerted: tuple[str, ...] = ()
    persona: str | None = None  # last, so entries stored before it decode unchanged

    @property
    def order(self) -> tuple[int, str]:
        """Event-time order, ties by event_id (RULES.md)."""
        return (self.t, self.id)

    @property
    def key(self) -> str | None:
        """K, the journey key: journey type when present, else intent."""
        return self.journey or self.intent

    @property
    def is_contact(self) -> bool:
        return self.inbound and self.onstage


@dataclass(frozen=True, slots=True)
class Invalid:
    """A stitched event the detector cannot use; the adapter dead-letters and counts it."""

    reason: str
    detail: str


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def entry_from_event(event: Any) -> Entry | Invalid:
    """The rules' view of a decoded stitched_event.v1 (errors as values, never raised)."""
    if not isinstance(event, dict):
        return Invalid("schema_violation", "not a JSON object")
    t, eid, channel = event.get("occurred_at_ms"), event.get("event_id"), event.get("channel")
    if not isinstance(t, int) or isinstance(t, bool):
        return Invalid("schema_violation", "occurred_at_ms missing or not an integer")
    if not isinstance(eid, str) or not eid:
        return Invalid("schema_violation", "event_id missing")
    if not isinstance(channel, str):
        return Invalid("schema_violation", "channel missing")
    journey = event["journey"] if isinstance(event.get("journey"), dict) else {}
    device = event["device"] if isinstance(event.get("device"), dict) else {}
    return Entry(
        t=t,
        id=eid,
        channel=channel,
        inbound=event.get("direction") == "inbound",
        onstage=event.get("visibility") == "onstage",
        journey=_opt_str(journey.get("type")),
        stage=_opt_str(journey.get("stage")),
        intent=_opt_str(event.get("intent")),
        outcome=_opt_str(event.get("outcome")),
        department=_opt_str(event.get("department")),
        device_key=_opt_str(event.get("device_key")),
        device_type=_opt_str(device.get("type")) if device else None,
        persona=_opt_str(event.get("persona")),
    )


def entry_from_record(ev: StitchedEvent) -> Entry:
    """The rules' view of a typed stitched_event.v1 (already valid: ``record_codec.decode_stitched``). Empty
    strings count as absent, as in ``entry_from_event`` (UNSET is falsy too)."""
    journey, device = ev.journey, ev.device
    jtype = stage = dtype = None
    if journey:
        jtype, stage = journey.type or None, journey.stage or None
    if device and isinstance(device.type, str):
        dtype = device.type or None
    return Entry(
        ev.occurred_at_ms,
        ev.event_id,
        ev.channel,
        ev.direction == "inbound",
        ev.visibility == "onstage",
        jtype,
        stage,
        ev.intent or None,
        ev.outcome or None,
        ev.department or None,
        ev.device_key or None,
        dtype,
        (),
        ev.persona or None,
    )
