"""The journey-map document (schemas/journey_map.v1.json) from the counters of a time window. Pure.

The adapter reads the counter hashes of the window (fields ``journey|stage|persona|channel|metric``) and
the customers-in-stage hash (``journey|stage|persona|channel``); this module filters them by journey,
persona and channel, sums them and shapes the stages, transitions, funnel, sentiment, NPS and departments.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.common.timeutil import format_ms
from services.journey_map.core.bounds import ALERT_TYPES, OTHER, Bounds
from services.journey_map.core.contribution import DWELL_BOUNDS_S

SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class MapQuery:
    journey: str
    persona: str | None
    channel: str | None
    since_ms: int
    until_ms: int


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


PERSONA_METRICS = frozenset({"e", "ab", "al:stall"})  # what the drop-offs by persona read


def sum_cells(
    hashes: Iterable[Mapping[Any, Any]],
    q: MapQuery,
    by_persona: dict[tuple[str, str], Counter[str]] | None = None,
) -> dict[str, Counter[str]]:
    """stage -> metric -> total over the hashes, for the query's journey, persona and channel; when given,
    ``by_persona`` gets (persona, stage) -> entries and drop-offs for every persona (the channel filter
    still applies)."""
    cells: dict[str, Counter[str]] = defaultdict(Counter)
    for h in hashes:
        for raw_field, raw_value in h.items():
            parts = _text(raw_field).split("|")
            if len(parts) != 5 or parts[0] != q.journey:
                continue
            _, stage, persona, channel, metric = parts
            if q.channel and channel != q.channel:
                continue
            if by_persona is not None and metric in PERSONA_METRICS:
                by_persona.setdefault((persona, stage), Counter())[metric] += int(raw_value)
            if q.persona and persona != q.persona:
                continue
            n = int(raw_value)
            if metric.startswith("c>"):  # from-channel in the metric, to-channel in the cell
                metric = f"{metric}>{channel}"
            cells[stage][metric] += n
            if metric in ("n", "e"):
                cells[stage][f"{metric}@{channel}"] += n
    return cells


def quantile_s(hist: Counter[int], q: float) -> float | None:
    """The q-quantile of a time-in-stage histogram, linear within its bucket (None: no samples)."""
    total = sum(hist.values())
    if total <= 0:
        return None
    rank, seen, lower = q * total, 0, 0.0
    for k in range(len(DWELL_BOUNDS_S) + 1):
        n = hist.get(k, 0)
        upper = float(DWELL_BOUNDS_S[k]) if k < len(DWELL_BOUNDS_S) else lower * 2
        if n > 0 and seen + n >= rank:
            return round(lower + (upper - lower) * max(0.0, rank - seen) / n, 1)
        seen += n
        lower = upper
    return lower


def _prefixed(c: Counter[str], prefix: str) -> dict[str, int]:
    return {k[len(prefix) :]: v for k, v in sorted(c.items()) if k.startswith(prefix) and v > 0}


def stage_doc(
    name: str, terminal: bool, c: Counter[str], now: int, channels: Iterable[str]
) -> dict[str, Any]:
    entries, conversions = c["e"], c["cv"]
    moves = sum(v for k, v in c.items() if k.startswith("m>"))
    stalled, abandoned = c["al:stall"], c["ab"]
    hist = Counter({int(k[2:]): v for k, v in c.items() if k.startswith("dw") and v > 0})
    promoters, passives, detractors = c["np"], c["nn"], c["nd"]
    responses = promoters + passives + detractors
    handoffs = _prefixed(c, "ho:")
    return {
        "name": name,
        "terminal": terminal,
        "entries": entries,
        "in_stage_now": now,
        "conversions": conversions,
        "conversion_rate": round(conversions / entries, 4) if entries else None,
        "moves_out": moves,
        "dropoffs": {"abandoned": abandoned, "stalled": stalled, "total": abandoned + stalled},
        "dropoff_rate": round((abandoned + stalled) / entries, 4) if entries else None,
        "time_in_stage": {
            "samples": sum(hist.values()),
            "median_seconds": quantile_s(hist, 0.5),
            "p90_seconds": quantile_s(hist, 0.9),
        },
        "touches": c["n"],
        "channels": {
            ch: {"touches": c[f"n@{ch}"], "entries": c[f"e@{ch}"]}
            for ch in channels
            if c[f"n@{ch}"] or c[f"e@{ch}"]
        },
        "inbound": c["in"],
        "outbound": c["out"],
        "onstage": c["on"],
        "offstage": c["off"],
        "departments": _prefixed(c, "dp:"),
        "handoffs": sum(handoffs.values()),
        "handoff_failures": sum(_prefixed(c, "hf:").values()),
        "sentiment": {"mean": round(c["ss"] / 1000 / c["sn"], 4) if c["sn"] else None, "count": c["sn"]},
        "emotions": _prefixed(c, "em:"),
        "nps": {
            "promoters": promoters,
            "passives": passives,
            "detractors": detractors,
            "responses": responses,
            "score": round(100 * (promoters - detractors) / responses, 1) if responses else None,
        },
        "alerts": {t: c[f"al:{t}"] for t in ALERT_TYPES if c[f"al:{t}"] > 0},
    }


def _links(cells: Mapping[str, Counter[str]]) -> list[dict[str, Any]]:
    """Stage-to-stage moves (Sankey links)."""
    return [
        {"from": stage, "to": k[2:], "count": v}
        for stage, c in cells.items()
        for k, v in c.items()
        if k.startswith("m>") and v > 0
    ]


def _channel_links(cells: Mapping[str, Counter[str]]) -> list[dict[str, Any]]:
    """Channel-to-channel moves between consecutive events of the journey, summed over its stages."""
    total: Counter[tuple[str, str]] = Counter()
    for c in cells.values():
        for k, v in c.items():
            if k.startswith("c>") and v > 0:
                src, _, dst = k[2:].partition(">")
                total[(src, dst)] += v
    return [{"from": s, "to": d, "count": n} for (s, d), n in total.items()]


def build_document(
    q: MapQuery,
    bounds: Bounds,
    windows: Iterable[Mapping[Any, Any]],
    now: Mapping[Any, Any],
    generated_ms: int,
) -> dict[str, Any]:
    by_persona: dict[tuple[str, str], Counter[str]] = {}
    cells = sum_cells(windows, q, by_persona)
    in_stage: Counter[str] = Counter()
    for raw_field, raw_value in now.items():
        parts = _text(raw_field).split("|")
        if len(parts) != 4 or parts[0] != q.journey:
            continue
        if (q.persona and parts[2] != q.persona) or (q.channel and parts[3] != q.channel):
            continue
        in_stage[parts[1]] += int(raw_value)
    names = list(bounds.stages.get(q.journey, (OTHER,)))
    if q.journey != OTHER and (cells.get(OTHER) or in_stage.get(OTHER)):
        names.append(OTHER)
    channels = sorted(bounds.channels)
    stages = [
        stage_doc(s, bounds.is_terminal(q.journey, s), cells.get(s, Counter()), in_stage[s], channels)
        for s in names
    ]
    handoffs: dict[tuple[str, str], dict[str, Any]] = {}
    for c in cells.values():
        for k, v in c.items():
            if k[:3] in ("ho:", "hf:") and v > 0:
                src, _, dst = k[3:].partition(">")
                row = handoffs.setdefault((src, dst), {"from": src, "to": dst, "count": 0, "failed": 0})
                row["count" if k.startswith("ho:") else "failed"] += v
    return {
        "schema_version": SCHEMA_VERSION,
        "journey": q.journey,
        "journeys": sorted(bounds.stages),
        "personas": sorted(bounds.personas | {OTHER}),
        "channels": channels,
        "filters": {
            "persona": q.persona,
            "channel": q.channel,
            "since": format_ms(q.since_ms),
            "until": format_ms(q.until_ms),
        },
        "generated_at": format_ms(generated_ms),
        "totals": {
            "entries": sum(s["entries"] for s in stages),
            "touches": sum(s["touches"] for s in stages),
            "in_journey_now": sum(in_stage.values()),
            "dropoffs": sum(s["dropoffs"]["total"] for s in stages),
            "open_alerts": sum(sum(s["alerts"].values()) for s in stages),
        },
        "stages": stages,
        "transitions": sorted(_links(cells), key=lambda r: (-r["count"], r["from"], r["to"])),
        "channel_transitions": sorted(_channel_links(cells), key=lambda r: (-r["count"], r["from"], r["to"])),
        "handoffs": sorted(handoffs.values(), key=lambda r: (-r["count"], r["from"], r["to"])),
        "dropoffs_by_persona": [
            {
                "persona": p,
                "stage": s,
                "entries": c["e"],
                "abandoned": c["ab"],
                "stalled": c["al:stall"],
                "rate": round((c["ab"] + c["al:stall"]) / c["e"], 4) if c["e"] else None,
            }
            for (p, s), c in sorted(by_persona.items())
            if c["e"] or c["ab"] or c["al:stall"]
        ],
    }
