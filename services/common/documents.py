"""Typed documents the services hand to people and other systems: ``gap_alert.v1`` (on gap-alerts, in the
journey's open alerts, through the API) and ``journey.v1`` (the API's journey of one customer).

Like ``services.common.records`` (the stream records), these are msgspec Structs held to ``schemas/`` by
``tests/unit/contracts/test_typed_records.py``: every property a schema names is a field (under the same
name), a field has no default exactly when the schema requires it, and every valid example converts and
comes back as it was (fields the Struct does not name dropped: the contracts are open within a major).
Fields the schema leaves untyped (``persona``, ``handling``) are ``Any``. Optional fields are ``UNSET``
(never encoded), so absent stays absent on the way out.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType

from services.common.records import Touchpoint

AlertType = Literal[
    "channel_switch", "device_switch", "department_handoff", "repeat_contact", "stall", "dropoff_spike"
]
Severity = Literal["low", "medium", "high", "critical"]
AlertStatus = Literal["open", "closed"]


# -- gap_alert.v1 ---------------------------------------------------------------------------------------
class AlertJourney(Struct, frozen=True, kw_only=True):
    type: str
    stage: str | UnsetType = UNSET


class AlertEvidence(Struct, frozen=True, kw_only=True):
    """What an alert rests on; which fields are set depends on the alert's type (docs/gap-detector.md)."""

    event_ids: list[str] | UnsetType = UNSET
    channels: list[str] | UnsetType = UNSET
    devices: list[str] | UnsetType = UNSET
    departments: list[str] | UnsetType = UNSET
    window_seconds: int | float | UnsetType = UNSET
    count: int | UnsetType = UNSET
    stage: str | UnsetType = UNSET
    deadline: str | UnsetType = UNSET
    sla_seconds: int | float | UnsetType = UNSET
    channel: str | UnsetType = UNSET
    rate: int | float | UnsetType = UNSET
    baseline: int | float | UnsetType = UNSET
    factor: int | float | UnsetType = UNSET
    volume: int | UnsetType = UNSET
    minute: str | UnsetType = UNSET


class GapAlert(Struct, frozen=True, kw_only=True):
    """gap_alert.v1: a gap in one customer's journey, or an aggregate drop-off spike (no customer_id)."""

    schema_version: str
    alert_id: str
    type: AlertType
    severity: Severity
    customer_id: str | UnsetType = UNSET
    status: AlertStatus | UnsetType = UNSET  # absent means open
    detected_at: str
    occurred_at: str
    journey: AlertJourney | UnsetType = UNSET
    intent: str | UnsetType = UNSET
    persona: Any = UNSET  # a string since v1.2; untyped in the schema
    handling: Any = UNSET  # the API's agent handling (v1.3); untyped in the schema
    title: str | UnsetType = UNSET
    evidence: AlertEvidence


# -- journey.v1 -----------------------------------------------------------------------------------------
class JourneySummary(Struct, frozen=True, kw_only=True):
    touchpoint_count: int
    first_seen: str | None
    last_seen: str | None
    last_channel: str | UnsetType | None = UNSET
    channels: dict[str, int]
    departments: list[str] | UnsetType = UNSET
    stages: dict[str, str] | UnsetType = UNSET  # journey type -> current stage
    sentiment_trend: list[int | float] | UnsetType = UNSET
    last_nps: int | UnsetType | None = UNSET
    inbound: int
    outbound: int


class JourneyDocument(Struct, frozen=True, kw_only=True):
    """journey.v1: one customer's stitched journey as the API returns it."""

    schema_version: str
    customer_id: str
    aliases: list[str] | UnsetType = UNSET
    identifiers: dict[str, list[str]]  # identifier type -> masked values, never raw
    touchpoints: list[Touchpoint]
    truncated: bool | UnsetType = UNSET
    summary: JourneySummary
    open_alerts: list[GapAlert]


_ALERT = msgspec.json.Decoder(GapAlert)


def decode_alert(value: bytes) -> GapAlert:
    """A gap_alert.v1 as the detector stored or published it (types checked, patterns not: the detector is
    trusted, the schema validator judges outside input); raises msgspec.ValidationError/DecodeError."""
    return _ALERT.decode(value)
