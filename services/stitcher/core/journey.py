"""Journey assembly rules, as a pure in-memory store.

``adapters/journey.lua`` implements exactly these steps in Redis (same field names, same string values),
after ``identity.lua`` resolved the batch's customers; ``core.model.StitchModel`` drives this store and
the identity graph in the Redis store's order, and an integration test checks the two agree:

- the journeys of customers an event merged away are folded into the survivor's first (their
  touchpoints re-added, their keys gone), so no merged-away customer keeps a journey;
- then per event, in arrival order, its masked identifiers are recorded and its touchpoint added:
- a present event_id is a duplicate and changes nothing;
- a full timeline drops its oldest touchpoint (by occurred_at_ms, then event_id), and an event older
  than the oldest kept is not added; either way the summary is marked ``truncated``;
- the summary is a commutative function of the kept touchpoints, so any arrival order gives the same one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from msgspec import Struct

from services.stitcher.core.identity import Resolution

WRITTEN, DUPLICATE, CAPPED = 1, 0, 2


@dataclass(frozen=True, slots=True)
class Facts:
    """What the summary needs from a touchpoint ('' when absent), the same six values the Lua receives."""

    channel: str
    department: str
    journey_type: str
    stage: str
    nps: str
    direction: str

    @classmethod
    def of(cls, tp: Mapping[str, Any]) -> Facts:
        journey = tp.get("journey") or {}
        nps = tp.get("nps")
        return cls(
            tp["channel"],
            tp.get("department", ""),
            journey.get("type", ""),
            journey.get("stage", ""),
            "" if nps is None else str(nps),
            "out" if tp.get("direction") == "outbound" else "in",
        )


class Stitched(Struct, frozen=True, gc=False):
    """What the stitch script decided for one event: its customer (and merges), and the journey write."""

    resolution: Resolution
    status: int  # WRITTEN | DUPLICATE | CAPPED


@dataclass
class Journey:
    timeline: dict[str, int] = field(default_factory=dict)
    touchpoints: dict[str, bytes] = field(default_factory=dict)
    summary: dict[str, str] = field(default_factory=dict)
    masked: dict[str, str] = field(default_factory=dict)


class JourneyStore:
    def __init__(self, max_touchpoints: int) -> None:
        self.max_touchpoints = max_touchpoints
        self.journeys: dict[str, Journey] = {}

    def put(
        self,
        cid: str,
        event_id: str,
        occurred_ms: int,
        tp_json: bytes,
        masked: Mapping[str, str],
        facts: Facts | None = None,
    ) -> int:
        """Store one touchpoint for cid (a resolved, current customer); returns WRITTEN, DUPLICATE or CAPPED.
        ``facts`` are Facts.of(the touchpoint), given when the caller has them already."""
        journey = self.journeys.setdefault(cid, Journey())
        journey.masked.update(masked)
        return self._add(journey, event_id, occurred_ms, tp_json, facts)

    def fold(
        self,
        cid: str,
        merged: Iterable[str],
        moved: Mapping[str, tuple[int, bytes]] | None = None,
        masks: Mapping[str, str] | None = None,
    ) -> None:
        """Move the journeys of the customers merged into cid (those that still have one) into cid's;
        ``moved``/``masks``: touchpoints (event id -> score, JSON) and masks a split sends to cid, added
        first, in timeline order (what journey.lua does with them)."""
        if moved is not None or masks:
            journey = self.journeys.setdefault(cid, Journey())
            for event_id, (score, tp) in sorted((moved or {}).items(), key=lambda kv: (kv[1][0], kv[0])):
                self._add(journey, event_id, score, tp)
            journey.masked.update(masks or {})
        for loser in sorted(merged):
            gone = self.journeys.pop(loser, None)
            if gone is None:
                continue
            journey = self.journeys.setdefault(cid, Journey())
            # In timeline order, as the script reads them (ZRANGE): with a full timeline the summary's
            # latest-of fields depend on the order touchpoints come in, so the order is part of the rule.
            for event_id, score in sorted(gone.timeline.items(), key=lambda kv: (kv[1], kv[0])):
                self._add(journey, event_id, score, gone.touchpoints[event_id])
            journey.masked.update(gone.masked)
            if gone.summary.get("truncated") == "1":
                journey.summary["truncated"] = "1"

    def rebuild(self, cid: str, gone: set[str], masks_gone: set[str]) -> None:
        """A split took ``gone`` away: the rest re-added in timeline order to a new summary (the truncated
        mark kept); an empty journey goes as a whole."""
        old = self.journeys.pop(cid)
        left = sorted(
            ((e, s) for e, s in old.timeline.items() if e not in gone), key=lambda kv: (kv[1], kv[0])
        )
        if not left:
            return
        j = self.replay([(e, s, old.touchpoints[e]) for e, s in left], old.summary.get("truncated") == "1")
        j.masked = {k: v for k, v in old.masked.items() if k not in masks_gone}
        self.journeys[cid] = j

    def replay(self, items: Iterable[tuple[str, int, bytes]], truncated: bool) -> Journey:
        """A journey of these touchpoints added in the order given (a split's rebuilt journey)."""
        j = Journey()
        for event_id, score, tp in items:
            self._add(j, event_id, score, tp)
        if truncated:
            j.summary["truncated"] = "1"
        return j

    def _add(self, j: Journey, event_id: str, score: int, tp_json: bytes, facts: Facts | None = None) -> int:
        if event_id in j.touchpoints:
            return DUPLICATE
        dropped = False
        if len(j.timeline) >= self.max_touchpoints:
            oldest = min(j.timeline.items(), key=lambda kv: (kv[1], kv[0]))
            j.summary["truncated"] = "1"
            if (score, event_id) < (oldest[1], oldest[0]):
                return CAPPED
            del j.timeline[oldest[0]]
            _count(j.summary, Facts.of(orjson.loads(j.touchpoints.pop(oldest[0]))), -1)
            dropped = True
        j.timeline[event_id] = score
        j.touchpoints[event_id] = tp_json
        facts = facts or Facts.of(orjson.loads(tp_json))
        _count(j.summary, facts, 1)
        _latest(j.summary, facts, score, event_id)
        s = j.summary
        s["v"] = "1"
        if dropped:
            s["first_ms"] = str(min(j.timeline.values()))
        elif "first_ms" not in s or score < int(s["first_ms"]):
            s["first_ms"] = str(score)
        return WRITTEN


def _count(s: dict[str, str], f: Facts, by: int) -> None:
    fields = ["count", f.direction, "ch:" + f.channel] + (["dept:" + f.department] if f.department else [])
    for name in fields:
        value = int(s.get(name, "0")) + by
        if value > 0:
            s[name] = str(value)
        else:
            s.pop(name, None)  # absent, not "0": the summary must not depend on what came and went


def _later(s: dict[str, str], ms_field: str, id_field: str, score: int, event_id: str) -> bool:
    if ms_field not in s:
        return True
    return (score, event_id) > (int(s[ms_field]), s[id_field])


def _latest(s: dict[str, str], f: Facts, score: int, event_id: str) -> None:
    if _later(s, "last_ms", "last_id", score, event_id):
        s.update({"last_ms": str(score), "last_id": event_id, "last_channel": f.channel})
    jt = f.journey_type
    if jt and _later(s, "stage_ms:" + jt, "stage_id:" + jt, score, event_id):
        s.update({"stage:" + jt: f.stage, "stage_ms:" + jt: str(score), "stage_id:" + jt: event_id})
    if f.nps and _later(s, "nps_ms", "nps_id", score, event_id):
        s.update({"nps": f.nps, "nps_ms": str(score), "nps_id": event_id})
