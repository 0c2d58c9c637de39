"""gap_alert.v1 documents: deterministic ids (RULES.md) and one human title line."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from services.common.timeutil import format_ms
from services.gap_detector.core.model import Entry

SCHEMA_VERSION = "1.0"
MINUTE_MS = 60_000
DAY_MS = 86_400_000


def alert_id(*parts: str) -> str:
    """``a_`` + the first 32 hex of SHA-256 over the '|'-joined cause."""
    return "a_" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=256)
def _day(days: int) -> str:
    return format_ms(days * DAY_MS)[:11]  # 'YYYY-MM-DDT'


def rfc3339(ms: int) -> str:
    """``timeutil.format_ms`` (RFC 3339 UTC, milliseconds) at a fraction of its cost: the date part is
    computed once per day, the time of day with integer arithmetic (every alert formats two or three)."""
    days, rest = divmod(ms, DAY_MS)
    seconds, milli = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_day(days)}{hours:02d}:{minutes:02d}:{seconds:02d}.{milli:03d}Z"


def _span(ms: int) -> str:
    minutes = max(ms, 0) // MINUTE_MS
    if minutes < 1:
        return f"{max(ms, 0) // 1000} s"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // 1440} d"


def _base(kind: str, severity: str, aid: str, occurred_ms: int, detected_ms: int) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "alert_id": aid,
        "type": kind,
        "severity": severity,
        "status": "open",
        "detected_at": rfc3339(detected_ms),
        "occurred_at": rfc3339(occurred_ms),
    }


def customer_alert(
    kind: str, severity: str, cid: str, trigger: Entry, evidence: dict[str, Any], title: str, detected_ms: int
) -> dict[str, Any]:
    """A per-customer alert raised by ``trigger`` (channel_switch, device_switch, handoff, repeat)."""
    doc = _base(kind, severity, alert_id(kind, cid, trigger.id), trigger.t, detected_ms)
    doc["customer_id"] = cid
    if trigger.journey:
        doc["journey"] = {"type": trigger.journey, **({"stage": trigger.stage} if trigger.stage else {})}
    if trigger.intent:
        doc["intent"] = trigger.intent
    if trigger.persona:  # gap_alert 1.2: who the customer is, for the alerts API's persona= and the map
        doc["persona"] = trigger.persona
    doc["title"] = title[:200]
    doc["evidence"] = evidence
    return doc


def title_channel_switch(prev: Entry, cur: Entry, failed_self_service: bool) -> str:
    gap = _span(cur.t - prev.t)
    if failed_self_service:
        return f"Self-service failed on {prev.channel}, then {cur.channel} within {gap}"
    return f"Switched from {prev.channel} to {cur.channel} within {gap}, unresolved"


def stall_alert(
    cid: str,
    journey: str,
    x_id: str,
    stage: str,
    deadline_ms: int,
    sla_ms: int,
    severity: str,
    detected_ms: int,
    persona: str | None = None,
) -> dict[str, Any]:
    doc = _base("stall", severity, alert_id("stall", cid, journey, x_id), deadline_ms, detected_ms)
    doc["customer_id"] = cid
    doc["journey"] = {"type": journey, "stage": stage}
    if persona:  # gap_alert 1.2, as customer_alert: the caller takes it from the customer's events
        doc["persona"] = persona
    doc["title"] = f"{journey.replace('_', ' ').capitalize()} stuck at {stage} for {_span(sla_ms)}"[:200]
    doc["evidence"] = {
        "event_ids": [x_id],
        "stage": stage,
        "deadline": rfc3339(deadline_ms),
        "sla_seconds": sla_ms / 1000,
    }
    return doc


def dropoff_alert(
    journey: str,
    stage: str,
    channel: str,
    minute_ms: int,
    rate: float,
    baseline: float,
    factor: float,
    volume: int,
    severity: str,
    detected_ms: int,
) -> dict[str, Any]:
    aid = alert_id("dropoff_spike", journey, stage, channel, str(minute_ms))
    doc = _base("dropoff_spike", severity, aid, minute_ms, detected_ms)
    doc["journey"] = {"type": journey, "stage": stage}
    doc["title"] = f"Drop-offs at {journey}/{stage} on {channel}: {rate:.0%} vs baseline {baseline:.0%}"
    doc["evidence"] = {
        "channel": channel,
        "rate": round(rate, 6),
        "baseline": round(baseline, 6),
        "factor": factor,
        "volume": volume,
        "minute": rfc3339(minute_ms),
    }
    return doc
