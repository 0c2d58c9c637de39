"""Turn the raw journey-store reads of one customer into a ``journey.v1`` document (a typed
``JourneyDocument``, held to the schema by tests/unit/contracts/test_typed_records.py). Pure, no I/O.

The store layout (written by the stitcher's journey.lua) is documented in docs/ARCHITECTURE.md:
timeline ZSET (event-time order), touchpoints HASH, summary HASH, masked-identifier HASH, plus the
customer's aliases and the detector's open alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from services.common.contracts import GAP_ALERT, first_error
from services.common.documents import GapAlert, JourneyDocument, JourneySummary
from services.common.records import Touchpoint
from services.common.timeutil import format_ms, parse_rfc3339_ms

SCHEMA_VERSION = "1.0"
SENTIMENT_TREND_LEN = 10
# Only contract fields leave the API (the Touchpoint Struct names them, the rest is dropped when decoded),
# so a stray field in the store can never leak an identifier.
_TOUCHPOINT = msgspec.json.Decoder(Touchpoint)


@dataclass(frozen=True)
class JourneyRecord:
    """What one pipelined read of the store returned for a customer (bytes as Redis gives them)."""

    customer_id: str
    timeline: Sequence[bytes]
    touchpoints: Mapping[bytes, bytes]
    summary: Mapping[bytes, bytes]
    masked: Mapping[bytes, bytes]
    aliases: Iterable[bytes]
    open_alerts: Mapping[bytes, bytes]

    def exists(self) -> bool:
        return bool(self.timeline or self.summary or self.masked)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _int(raw: bytes | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def ordered_touchpoints(record: JourneyRecord) -> list[Touchpoint]:
    """Touchpoints in timeline order (occurred_at, then event_id); unreadable entries are skipped."""
    out = []
    for event_id in record.timeline:
        raw = record.touchpoints.get(event_id)
        if raw is None:
            continue
        try:
            out.append(_TOUCHPOINT.decode(raw))
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue
    return out


def identifiers(masked: Mapping[bytes, bytes]) -> dict[str, list[str]]:
    """identifier type -> sorted masked values; the keyed hash itself is never returned."""
    by_type: dict[str, set[str]] = {}
    for id_key, shown in masked.items():
        id_type = id_key.decode(errors="replace").split(":", 1)[0]
        by_type.setdefault(id_type, set()).add(shown.decode(errors="replace"))
    return {t: sorted(v) for t, v in sorted(by_type.items())}


def _prefixed_counts(summary: Mapping[str, bytes], prefix: str) -> dict[str, int]:
    out = {}
    for name, raw in summary.items():
        if name.startswith(prefix):
            n = _int(raw)
            if n is not None:
                out[name[len(prefix) :]] = n
    return out


def summary_doc(record: JourneyRecord, touchpoints: Sequence[Touchpoint]) -> JourneySummary:
    """The journey.v1 summary from the order-independent summary hash (+ the trend, computed on read)."""
    s = {k.decode(errors="replace"): v for k, v in record.summary.items()}
    first_ms, last_ms = _int(s.get("first_ms")), _int(s.get("last_ms"))
    departments = _prefixed_counts(s, "dept:")
    stages = {
        name[len("stage:") :]: raw.decode(errors="replace")
        for name, raw in s.items()
        if name.startswith("stage:")
    }
    sentiments = [float(tp.sentiment) for tp in touchpoints if isinstance(tp.sentiment, int | float)]
    count = _int(s.get("count"))
    return JourneySummary(
        touchpoint_count=count if count is not None else len(touchpoints),
        first_seen=format_ms(first_ms) if first_ms is not None else None,
        last_seen=format_ms(last_ms) if last_ms is not None else None,
        last_channel=s["last_channel"].decode(errors="replace") if "last_channel" in s else None,
        channels=_prefixed_counts(s, "ch:"),
        departments=sorted(departments, key=lambda d: (-departments[d], d)),
        stages=dict(sorted(stages.items())),
        sentiment_trend=sentiments[-SENTIMENT_TREND_LEN:],
        last_nps=_int(s.get("nps")),
        inbound=_int(s.get("in")) or 0,
        outbound=_int(s.get("out")) or 0,
    )


def instant_ms(value: str) -> int:
    """Epoch ms of a schema-valid date-time; 0 for the rare ones Python cannot parse (leap seconds)."""
    try:
        return parse_rfc3339_ms(value)
    except (ValueError, OverflowError):
        return 0


def valid_alerts(raw_alerts: Iterable[bytes]) -> list[dict[str, Any]]:
    """Parsed gap alerts that satisfy gap_alert.v1, ordered by event time then id."""
    alerts = []
    for raw in raw_alerts:
        alert = _json_object(raw)
        if alert is not None and first_error(GAP_ALERT, alert) is None:
            alerts.append(alert)
    # Schema-valid date-times parse; compare instants, not strings ('Z' vs '+00:00', fraction digits).
    return sorted(alerts, key=lambda a: (instant_ms(a["occurred_at"]), a["alert_id"]))


def _truncated(record: JourneyRecord) -> bool:
    # Older touchpoints were dropped by the writer's cap, or the API read only the most recent ones.
    count = _int(record.summary.get(b"count"))
    return record.summary.get(b"truncated") == b"1" or (count is not None and count > len(record.timeline))


def _open_alerts(raw_alerts: Iterable[bytes]) -> list[GapAlert]:
    # Lenient: a schema-valid JSON Schema integer may be written 5.0.
    return [
        msgspec.convert(a, GapAlert, strict=False)
        for a in valid_alerts(raw_alerts)
        if a.get("status") != "closed"
    ]


def build_journey(record: JourneyRecord) -> JourneyDocument:
    """The journey.v1 document of one customer."""
    touchpoints = ordered_touchpoints(record)
    return JourneyDocument(
        schema_version=SCHEMA_VERSION,
        customer_id=record.customer_id,
        aliases=sorted(a.decode(errors="replace") for a in record.aliases),
        identifiers=identifiers(record.masked),
        touchpoints=touchpoints,
        truncated=_truncated(record),
        summary=summary_doc(record, touchpoints),
        open_alerts=_open_alerts(record.open_alerts.values()),
    )
