"""The ground-truth document of a simulation: who is who, which merges must happen, every alert each rule
must raise (derived by the oracle from the final event-time ordered events) and the injected incidents.

Raw identifiers appear here on purpose: this is test data about fictional people.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from services.common.errors import UserError
from services.common.timeutil import format_ms
from services.gap_detector.core.definitions import Definitions
from services.simulator import linking
from services.simulator.generator import Population, SimConfig
from services.simulator.oracle import Expected, OEvent, Oracle, oevent

FORMAT = "journeys.simulation_truth.v1"
PER_CUSTOMER_TYPES = ("channel_switch", "device_switch", "department_handoff", "repeat_contact", "stall")
ALERT_TYPES = (*PER_CUSTOMER_TYPES, "dropoff_spike")


def expected_alerts(
    events: Mapping[str, Iterable[Mapping[str, Any]]],
    defs: Definitions,
    lateness_ms: int,
    final_wm: int | None = None,
) -> tuple[list[Expected], list[dict[str, Any]], int]:
    """(per-customer alerts, drop-off spikes, final watermark) for valid events by true customer; stalls
    are due up to ``final_wm`` when given (a live detector's watermark), else the newest event - lateness."""
    oracle = Oracle(defs, lateness_ms)
    by_customer = {c: [oevent(e, c) for e in evs] for c, evs in events.items()}
    everything: list[OEvent] = [e for evs in by_customer.values() for e in evs]
    if not everything:
        return [], [], 0
    if final_wm is None:
        final_wm = oracle.final_watermark(everything)
    alerts: list[Expected] = []
    for evs in by_customer.values():
        alerts.extend(oracle.customer_alerts(evs, final_wm))
    stalls = [a for a in alerts if a.type == "stall"]
    spikes = [
        {
            "journey": s.journey_type,
            "stage": s.stage,
            "channel": s.channel,
            "minute": format_ms(s.minute_ms),
            "volume": s.volume,
            "dropoffs": s.dropoffs,
            "rate": round(s.rate, 4),
        }
        for s in oracle.spikes(everything, stalls)
    ]
    return alerts, spikes, final_wm


def alert_json(a: Expected) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": a.type,
        "customer": a.customer,
        "trigger": a.trigger,
        "event_ids": list(a.event_ids),
        "severity": a.severity,
        "occurred_at": format_ms(a.occurred_at_ms),
    }
    if a.journey_type:
        out["journey"] = a.journey_type
    if a.stage:
        out["stage"] = a.stage
    return out


def build_truth(pop: Population, cfg: SimConfig, defs: Definitions) -> dict[str, Any]:
    alerts, spikes, final_wm = expected_alerts(pop.events, defs, cfg.lateness_ms)
    owner = {e["event_id"]: c for c, evs in pop.events.items() for e in evs}
    arrivals = [(r.value, owner[r.value["event_id"]]) for r in pop.records if r.value is not None]
    alerts.sort(key=lambda a: (a.type, a.occurred_at_ms, a.trigger))
    return {
        "format": FORMAT,
        "config": {
            "seed": cfg.seed,
            "customers": cfg.customers,
            "start": format_ms(cfg.start_ms),
            "span_ms": cfg.span_ms,
            "late": cfg.late,
            "duplicates": cfg.duplicates,
            "malformed": cfg.malformed,
            "junk": cfg.junk,
            "incidents": cfg.incidents,
            "lateness_ms": cfg.lateness_ms,
        },
        "final_watermark": format_ms(final_wm) if final_wm else None,
        "counts": {**pop.counts, "customers": len(pop.events), "alerts": len(alerts)},
        "customers": {
            c: {
                "persona": pop.personas[c],
                "identifiers": pop.identifiers[c],
                "events": [e["event_id"] for e in evs],
            }
            for c, evs in sorted(pop.events.items())
        },
        "merges": linking.expected_merges(arrivals),
        "alerts": [alert_json(a) for a in alerts],
        "incidents": [
            {
                "journey": i["journey"],
                "stage": i["stage"],
                "channel": i["channel"],
                "start": format_ms(i["start_ms"]),
                "end": format_ms(i["end_ms"]),
            }
            for i in pop.incidents
        ],
        "spikes": spikes,
    }


def at_watermark(
    truth: dict[str, Any], population: Iterable[Mapping[str, Any]], defs: Definitions, final_wm: int
) -> dict[str, Any]:
    """The truth as of ``final_wm``: its alerts and spikes recomputed from the population's records (the
    JSONL `journeys simulate` wrote) for a detector whose watermark is there — with the live clock the
    wall clock, not the newest event, says which stalls are due by now."""
    owner = {e: c for c, info in truth["customers"].items() for e in info["events"]}
    events: dict[str, dict[str, Mapping[str, Any]]] = {}
    for rec in population:
        value = rec.get("value")
        if isinstance(value, Mapping) and value.get("event_id") in owner:
            events.setdefault(owner[value["event_id"]], {})[value["event_id"]] = value  # redeliveries once
    by_customer = {c: list(evs.values()) for c, evs in events.items()}
    alerts, spikes, wm = expected_alerts(by_customer, defs, int(truth["config"]["lateness_ms"]), final_wm)
    alerts.sort(key=lambda a: (a.type, a.occurred_at_ms, a.trigger))
    return {
        **truth,
        "alerts": [alert_json(a) for a in alerts],
        "spikes": spikes,
        "final_watermark": format_ms(wm),
    }


def dump(truth: Mapping[str, Any]) -> bytes:
    return orjson.dumps(truth, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)


def load(path: str | Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise UserError(f"cannot read ground truth {path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise UserError(f"{path}: not a ground-truth JSON file: {exc}") from None
    if data.get("format") != FORMAT:
        raise UserError(f"{path}: not a ground-truth file (format {data.get('format')!r}, want {FORMAT})")
    return data
