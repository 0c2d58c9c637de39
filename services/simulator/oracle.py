"""An independent implementation of docs/RULES.md over the final, event-time ordered history.

It deliberately shares no code with the gap detector: the detector reacts to events as they arrive,
with buffers and timers; the oracle looks at each true customer's complete history afterwards. When
the two disagree, one of them misreads RULES.md — that is what evaluation is for.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.common.timeutil import parse_rfc3339_ms
from services.gap_detector.core.definitions import Definitions

MINUTE_MS = 60_000
RESOLVED = frozenset({"success", "resolved"})


@dataclass(frozen=True, slots=True)
class OEvent:
    event_id: str
    t: int
    customer: str
    channel: str
    direction: str = "inbound"
    visibility: str = "onstage"
    journey_type: str | None = None
    stage: str | None = None
    intent: str | None = None
    outcome: str | None = None
    department: str | None = None
    device_key: str | None = None

    @property
    def key(self) -> str | None:
        return self.journey_type or self.intent

    @property
    def contact(self) -> bool:
        return self.direction == "inbound" and self.visibility == "onstage"


@dataclass(frozen=True, slots=True)
class Expected:
    type: str
    customer: str
    event_ids: tuple[str, ...]
    severity: str
    occurred_at_ms: int
    journey_type: str | None = None
    stage: str | None = None

    @property
    def trigger(self) -> str:
        return self.event_ids[-1]


@dataclass(frozen=True, slots=True)
class Spike:
    journey_type: str
    stage: str
    channel: str
    minute_ms: int
    volume: int
    dropoffs: int
    rate: float
    baseline: float


def oevent(event: Mapping[str, Any], customer: str) -> OEvent:
    """The fields the rules read. device_key: the app install id, else the browser cookie — the
    simulator never puts both on one event, so the stitcher's choice between them cannot matter."""
    journey = event.get("journey") or {}
    ids = event.get("identifiers") or {}
    return OEvent(
        event_id=event["event_id"],
        t=parse_rfc3339_ms(event["occurred_at"]),
        customer=customer,
        channel=event["channel"],
        direction=event.get("direction", "inbound"),
        visibility=event.get("visibility", "onstage"),
        journey_type=journey.get("type"),
        stage=journey.get("stage"),
        intent=event.get("intent"),
        outcome=event.get("outcome"),
        department=event.get("department"),
        device_key=ids.get("device_id") or ids.get("cookie_id"),
    )


class Oracle:
    def __init__(self, defs: Definitions, lateness_ms: int = 300_000) -> None:
        self.defs = defs
        self.lateness_ms = lateness_ms

    def unresolved(self, e: OEvent) -> bool:
        if e.outcome in RESOLVED:
            return False
        return not (e.journey_type and e.stage and self.defs.is_terminal(e.journey_type, e.stage))

    def customer_alerts(self, events: Iterable[OEvent], final_watermark_ms: int) -> list[Expected]:
        """Every per-customer alert for one customer's deduplicated events."""
        evs = sorted({e.event_id: e for e in events}.values(), key=lambda e: (e.t, e.event_id))
        out = self._switches(evs) + self._handoffs(evs) + self._repeats(evs)
        out += self._stalls(evs, final_watermark_ms)
        return out

    def _switches(self, evs: list[OEvent]) -> list[Expected]:
        out: list[Expected] = []
        last_contact: dict[str, OEvent] = {}
        last_device: OEvent | None = None
        for e in evs:
            th = self.defs.thresholds(e.journey_type)
            key = e.key
            if e.contact and key is not None:
                p = last_contact.get(key)
                if (
                    p is not None
                    and p.channel != e.channel
                    and e.t - p.t <= th.channel_switch_window_ms
                    and self.unresolved(p)
                ):
                    high = p.channel in self.defs.self_service and e.channel in self.defs.assisted
                    out.append(
                        Expected(
                            "channel_switch",
                            e.customer,
                            (p.event_id, e.event_id),
                            "high" if high else "medium",
                            e.t,
                            e.journey_type,
                            e.stage,
                        )
                    )
                last_contact[key] = e
            if e.device_key is not None:
                p = last_device
                if p is not None and p.device_key != e.device_key and e.t - p.t <= th.device_switch_window_ms:
                    out.append(
                        Expected(
                            "device_switch",
                            e.customer,
                            (p.event_id, e.event_id),
                            "low",
                            e.t,
                            e.journey_type,
                            e.stage,
                        )
                    )
                last_device = e
        return out

    def _handoffs(self, evs: list[OEvent]) -> list[Expected]:
        out: list[Expected] = []
        by_key: dict[str, list[OEvent]] = defaultdict(list)
        for e in evs:
            key = e.key
            if e.department is None or key is None:
                continue
            chain = by_key[key]
            window = self.defs.thresholds(e.journey_type).handoff_window_ms
            if chain and chain[-1].department != e.department and e.t - chain[-1].t <= window:
                depts = {c.department for c in chain if e.t - c.t <= window} | {e.department}
                out.append(
                    Expected(
                        "department_handoff",
                        e.customer,
                        (chain[-1].event_id, e.event_id),
                        "high" if len(depts) >= 3 else "medium",
                        e.t,
                        e.journey_type,
                        e.stage,
                    )
                )
            chain.append(e)
        return out

    def _repeats(self, evs: list[OEvent]) -> list[Expected]:
        out: list[Expected] = []
        by_intent: dict[str, list[OEvent]] = defaultdict(list)
        for e in evs:
            if e.contact and e.intent and e.channel in self.defs.assisted:
                by_intent[e.intent].append(e)
        for contacts in by_intent.values():
            times = [c.t for c in contacts]
            for e in contacts:
                th = self.defs.thresholds(e.journey_type)
                # t <= E.t includes other contacts at exactly E's time (RULES.md); E itself goes last.
                lo = bisect.bisect_left(times, e.t - th.repeat_contact_window_ms)
                hi = bisect.bisect_right(times, e.t)
                window = [c for c in contacts[lo:hi] if c is not e] + [e]
                if len(window) >= th.repeat_contact_count:
                    sev = "medium" if len(window) == th.repeat_contact_count else "high"
                    ids = tuple(c.event_id for c in window[-50:])
                    out.append(Expected("repeat_contact", e.customer, ids, sev, e.t, e.journey_type, e.stage))
        return out

    def _stalls(self, evs: list[OEvent], final_wm: int) -> list[Expected]:
        out: list[Expected] = []
        by_type: dict[str, list[OEvent]] = defaultdict(list)
        for e in evs:
            if e.journey_type is not None and e.stage is not None:
                by_type[e.journey_type].append(e)
        for jtype, chain in by_type.items():
            for i, x in enumerate(chain):
                assert x.stage is not None
                if self.defs.is_terminal(jtype, x.stage):
                    continue
                deadline = x.t + self.defs.sla_ms(jtype, x.stage)
                nxt = chain[i + 1] if i + 1 < len(chain) else None
                if (nxt is None or nxt.t > deadline) and deadline <= final_wm:
                    st = self.defs.stage(jtype, x.stage)
                    sev = "high" if st is not None and st.importance >= 3 else "medium"
                    out.append(Expected("stall", x.customer, (x.event_id,), sev, deadline, jtype, x.stage))
        return out

    def spikes(self, events: Iterable[OEvent], stalls: Iterable[Expected]) -> list[Spike]:
        """dropoff_spike over all customers' deduplicated events plus the stalls that fire."""
        volume: dict[tuple[str, str, str, int], int] = defaultdict(int)
        drops: dict[tuple[str, str, str, int], int] = defaultdict(int)
        by_id: dict[str, OEvent] = {}
        for e in events:
            by_id.setdefault(e.event_id, e)
        for e in by_id.values():
            if e.journey_type and e.stage:
                cell = (e.journey_type, e.stage, e.channel, e.t // MINUTE_MS * MINUTE_MS)
                volume[cell] += 1
                drops[cell] += e.outcome == "abandoned"
        for s in stalls:
            x = by_id.get(s.trigger)
            if x is not None and x.journey_type and x.stage:
                drops[(x.journey_type, x.stage, x.channel, x.t // MINUTE_MS * MINUTE_MS)] += 1
        out: list[Spike] = []
        for cell, vol in sorted(volume.items()):
            th = self.defs.thresholds(cell[0])
            if vol < th.dropoff_min_volume:
                continue
            base_v = base_d = 0
            for k in range(1, th.dropoff_baseline_minutes + 1):
                prev = (*cell[:3], cell[3] - k * MINUTE_MS)
                base_v += volume.get(prev, 0)
                base_d += drops.get(prev, 0)
            baseline = base_d / base_v if base_v else 0.0
            rate = drops[cell] / vol
            if rate > th.dropoff_factor * max(baseline, 0.01):
                out.append(Spike(*cell, volume=vol, dropoffs=drops[cell], rate=rate, baseline=baseline))
        return out

    def final_watermark(self, events: Iterable[OEvent]) -> int:
        return max(e.t for e in events) - self.lateness_ms
