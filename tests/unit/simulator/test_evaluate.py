"""Scoring: per-type precision/recall on (type, trigger), spikes against incidents, stitching accuracy."""

from __future__ import annotations

from typing import Any

import pytest

from services.simulator.evaluate import evaluate, score_alerts, score_stitching

pytestmark = pytest.mark.unit

TRUTH: dict[str, Any] = {
    "customers": {"T1": {"events": ["a", "b", "c"]}, "T2": {"events": ["d", "e"]}, "T3": {"events": ["f"]}},
    "alerts": [
        {"type": "channel_switch", "customer": "T1", "trigger": "b"},
        {"type": "channel_switch", "customer": "T2", "trigger": "e"},
        {"type": "stall", "customer": "T3", "trigger": "f"},
    ],
    "incidents": [
        {
            "journey": "purchase",
            "stage": "payment",
            "channel": "web",
            "start": "2026-11-03T10:00:00.000Z",
            "end": "2026-11-03T10:00:00.000Z",
        }
    ],
}


def alert(kind: str, ids: list[str], alert_id: str, cid: str = "c_1") -> dict[str, Any]:
    return {"alert_id": alert_id, "type": kind, "customer_id": cid, "evidence": {"event_ids": ids}}


def spike(minute: str, alert_id: str, stage: str = "payment") -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "type": "dropoff_spike",
        "occurred_at": minute,
        "journey": {"type": "purchase", "stage": stage},
        "evidence": {"channel": "web", "minute": minute},
    }


def test_alerts_match_on_type_and_last_evidence_event() -> None:
    got = [
        alert("channel_switch", ["a", "b"], "a_1"),
        alert("channel_switch", ["a", "b"], "a_1"),  # redelivered
        alert("channel_switch", ["x", "c"], "a_2"),
        alert("stall", ["f"], "a_3", cid="c_9"),
    ]
    types, read, dup = score_alerts(TRUTH, got)
    cs = types["channel_switch"]
    assert (read, dup) == (4, 1)
    assert (cs.expected, cs.raised, cs.matched_expected) == (2, 2, 1)
    assert cs.precision == 0.5 and cs.recall == 0.5 and cs.missed == ["e"] and cs.unexpected == ["c"]
    assert types["stall"].precision == types["stall"].recall == 1.0  # the customer id does not matter
    assert (
        types["device_switch"].precision == types["device_switch"].recall == 1.0
    )  # nothing due, none raised


def test_the_last_record_of_an_alert_id_wins_so_a_retraction_is_not_a_false_positive() -> None:
    closed = {**alert("channel_switch", ["x", "c"], "a_2"), "status": "closed"}
    got = [
        alert("channel_switch", ["a", "b"], "a_1"),
        alert("channel_switch", ["x", "c"], "a_2"),  # raised, then retracted by a late event
        closed,
    ]
    types, read, dup = score_alerts(TRUTH, got)
    cs = types["channel_switch"]
    assert (read, dup) == (3, 1)
    assert cs.raised == 1 and cs.precision == 1.0 and cs.unexpected == []


def test_spikes_match_incidents_up_to_two_minutes_after_the_end() -> None:
    got = [
        spike("2026-11-03T10:02:00.000Z", "a_s1"),
        spike("2026-11-03T10:03:00.000Z", "a_s2"),
        spike("2026-11-03T10:01:00.000Z", "a_s3", stage="checkout"),
    ]
    s = score_alerts(TRUTH, got)[0]["dropoff_spike"]
    assert (s.expected, s.raised, s.matched_expected, s.matched_raised) == (1, 3, 1, 1)
    assert s.recall == 1.0 and s.precision == pytest.approx(1 / 3)


def test_stitching_counts_false_and_missed_merges() -> None:
    final = {
        "a": "c_1",
        "b": "c_1",
        "c": "c_2",  # T1 split over two customers: 1 missed merge
        "d": "c_3",
        "e": "c_3",
        "f": "c_3",
    }  # T2 and T3 merged: 1 false merge
    s = score_stitching(TRUTH, final)
    assert (s.events, s.seen, s.missed_merges, s.false_merges) == (6, 6, 1, 1)
    assert s.correct == 4  # a, b (T1's main id) and d, e (T2 owns c_3); f is on a stranger's id
    assert s.accuracy == pytest.approx(4 / 6)


def test_a_perfect_run_passes_the_thresholds() -> None:
    got = [
        alert("channel_switch", ["a", "b"], "a_1"),
        alert("channel_switch", ["d", "e"], "a_2"),
        alert("stall", ["f"], "a_3"),
        spike("2026-11-03T10:00:00.000Z", "a_s"),
    ]
    final = {e: f"c_{c}" for c, info in TRUTH["customers"].items() for e in info["events"]}
    report = evaluate(TRUTH, got, final)
    assert report.failures(0.99, 0.99, 0, 0.99) == []
    assert report.to_json()["stitching"]["accuracy"] == 1.0
    missing = evaluate(TRUTH, got[1:], final)
    assert missing.failures(0.99, 0.99, 0, 0.99) == ["channel_switch recall 0.5000 < 0.99"]
