"""The ground truth agrees with the events it describes: re-derived from the JSONL records alone, every
expected alert is explainable by the generated events."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest

from services.common.timeutil import parse_rfc3339_ms
from services.gap_detector.core.definitions import load_definitions
from services.simulator.streaming import Line, parse_line
from services.simulator.truth import ALERT_TYPES, alert_json, at_watermark, expected_alerts
from tests.unit.simulator.test_generator import CFG, population

pytestmark = pytest.mark.unit


def _events_from_lines() -> dict[str, list[dict[str, Any]]]:
    """What a consumer of the file sees: lines -> valid events, deduplicated, assigned by the truth."""
    pop, truth = population()
    owner = {e: c for c, info in truth["customers"].items() for e in info["events"]}
    events: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for n, rec in enumerate(pop.records, start=1):
        line = parse_line(n, rec.line())
        assert isinstance(line, Line)
        try:
            ev = orjson.loads(line.payload)
        except orjson.JSONDecodeError:
            continue
        if isinstance(ev, dict) and ev.get("event_id") in owner:
            events[owner[ev["event_id"]]][ev["event_id"]] = ev
    return {c: list(evs.values()) for c, evs in events.items()}


def test_alerts_rederived_from_the_file_equal_the_truth() -> None:
    _, truth = population()
    alerts, spikes, _ = expected_alerts(_events_from_lines(), load_definitions(), CFG.lateness_ms)
    rederived = sorted(orjson.dumps(alert_json(a), option=orjson.OPT_SORT_KEYS) for a in alerts)
    recorded = sorted(orjson.dumps(a, option=orjson.OPT_SORT_KEYS) for a in truth["alerts"])
    assert rederived == recorded
    assert spikes == truth["spikes"]


def test_every_alert_type_is_represented() -> None:
    _, truth = population()
    kinds = Counter(a["type"] for a in truth["alerts"])
    for kind in ALERT_TYPES[:-1]:
        assert kinds[kind] >= 5, kinds
    assert truth["incidents"] and truth["spikes"]


def test_every_alert_is_explained_by_its_customer_events() -> None:
    pop, truth = population()
    defs = load_definitions()
    by_id = {e["event_id"]: (c, e) for c, evs in pop.events.items() for e in evs}
    final_wm = parse_rfc3339_ms(truth["final_watermark"])
    for a in truth["alerts"]:
        evs = [by_id[i] for i in a["event_ids"]]
        assert all(c == a["customer"] for c, _ in evs), a
        times = [parse_rfc3339_ms(e["occurred_at"]) for _, e in evs]
        assert times == sorted(times), a
        last = evs[-1][1]
        if a["type"] == "channel_switch":
            first = evs[0][1]
            assert first["channel"] != last["channel"]
            window = defs.thresholds((last.get("journey") or {}).get("type")).channel_switch_window_ms
            assert times[1] - times[0] <= window
        elif a["type"] == "repeat_contact":
            assert len({e.get("intent") for _, e in evs}) == 1 and len(evs) >= 3
        elif a["type"] == "stall":
            assert parse_rfc3339_ms(a["occurred_at"]) <= final_wm
            assert not defs.is_terminal(last["journey"]["type"], last["journey"]["stage"])
        elif a["type"] == "department_handoff":
            assert evs[0][1]["department"] != last["department"]


def test_spikes_fall_inside_the_injected_incidents() -> None:
    _, truth = population()
    for spike in truth["spikes"]:
        minute = parse_rfc3339_ms(spike["minute"])
        assert any(
            (i["journey"], i["stage"], i["channel"]) == (spike["journey"], spike["stage"], spike["channel"])
            and parse_rfc3339_ms(i["start"]) <= minute <= parse_rfc3339_ms(i["end"])
            for i in truth["incidents"]
        ), spike
    for inc in truth["incidents"]:
        assert any(s["minute"] == inc["start"] for s in truth["spikes"]), inc


def test_the_truth_at_a_later_watermark_adds_exactly_the_stalls_due_by_then() -> None:
    pop, truth = population()
    records = [orjson.loads(r.line()) for r in pop.records]
    final = parse_rfc3339_ms(truth["final_watermark"])
    same = at_watermark(truth, records, load_definitions(), final)
    assert same["alerts"] == truth["alerts"] and same["spikes"] == truth["spikes"]
    later = at_watermark(truth, records, load_definitions(), final + 30 * 86_400_000)
    added = [a for a in later["alerts"] if a not in truth["alerts"]]
    assert added and {a["type"] for a in added} == {"stall"}  # only the clock moved: only stalls are due
    assert all(a in later["alerts"] for a in truth["alerts"])
