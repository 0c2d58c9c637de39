"""What comes next on each open journey of a customer: where it is, what the definitions expect after it,
and how long before the stage's SLA runs out (when the detector would call it a stall). Pure, no I/O.

The current stage of a journey type is the summary's ``stage:<type>`` (the latest stage by event time, kept
by the stitcher with ``stage_ms:<type>``, its event time); the deadline is that time plus the stage's SLA
from the journey definitions, exactly as the detector arms its stall timer. A journey at a terminal stage
is finished and not listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.common.timeutil import format_ms
from services.gap_detector.core.definitions import Definitions

MAX_NEXT = 3  # the next stages shown; the terminal outcomes are listed apart


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def current_stages(summary: Mapping[bytes, bytes] | Mapping[str, str]) -> dict[str, tuple[str, int | None]]:
    """journey type -> (current stage, its event time ms or None) from the summary hash."""
    fields = {_text(k): _text(v) for k, v in summary.items()}
    out: dict[str, tuple[str, int | None]] = {}
    for name, stage in fields.items():
        if not name.startswith("stage:"):
            continue
        journey = name[len("stage:") :]
        raw_ms = fields.get(f"stage_ms:{journey}")
        try:
            at = int(raw_ms) if raw_ms is not None else None
        except ValueError:
            at = None
        out[journey] = (stage, at)
    return out


def _stalled(alerts: Iterable[Mapping[str, Any]], journey: str) -> bool:
    return any(
        a.get("type") == "stall"
        and a.get("status", "open") != "closed"
        and (a.get("journey") or {}).get("type") == journey
        for a in alerts
    )


def what_next(
    summary: Mapping[bytes, bytes] | Mapping[str, str],
    defs: Definitions,
    now_ms: int,
    open_alerts: Iterable[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Per open journey, most urgent first (nearest deadline; no deadline last)::

        {"journey": "purchase", "stage": "checkout", "since": <rfc3339>|None, "sla_seconds": 7200,
         "deadline": <rfc3339>|None, "seconds_left": 1234 (negative: overdue)|None,
         "next_stages": ["payment"], "outcomes": ["abandoned", "converted"], "known": True, "stalled": False}

    ``known`` is False for a journey type or stage the definitions do not name (the detector then uses
    the default stall SLA, and nothing is known about what follows)."""
    alerts = list(open_alerts)
    out = []
    for journey, (stage, at) in sorted(current_stages(summary).items()):
        if defs.is_terminal(journey, stage):
            continue
        jt = defs.journeys.get(journey)
        names = [s.name for s in jt.stages] if jt is not None else []
        known = stage in names
        following = names[names.index(stage) + 1 :][:MAX_NEXT] if known else []
        sla_ms = defs.sla_ms(journey, stage)
        deadline = None if at is None else at + sla_ms
        out.append(
            {
                "journey": journey,
                "stage": stage,
                "since": None if at is None else format_ms(at),
                "sla_seconds": sla_ms / 1000,
                "deadline": None if deadline is None else format_ms(deadline),
                "seconds_left": None if deadline is None else (deadline - now_ms) / 1000,
                "next_stages": following,
                "outcomes": sorted(jt.terminal) if jt is not None else [],
                "known": known,
                "stalled": _stalled(alerts, journey),
            }
        )
    out.sort(key=lambda j: (j["seconds_left"] is None, j["seconds_left"] or 0, j["journey"]))
    return out
