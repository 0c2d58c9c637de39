"""The journey store rules: event-time order, dedup, cap, summary and folding merged customers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.stitcher.core.journey import CAPPED, DUPLICATE, WRITTEN, Facts, JourneyStore

pytestmark = pytest.mark.unit


def tp(eid: str, channel: str = "web", **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "event_id": eid,
            "occurred_at": "x",
            "channel": channel,
            "touchpoint": "t",
            "direction": extra.pop("direction", "inbound"),
            "visibility": "onstage",
            **extra,
        }
    )


def write(store: JourneyStore, cid: str, eid: str, ms: int, **extra: Any) -> int:
    return store.put(cid, eid, ms, tp(eid, **extra), {})


def test_late_events_are_placed_by_event_time_and_duplicates_ignored() -> None:
    s = JourneyStore(10)
    assert write(s, "c_1", "b", 200, channel="phone") == WRITTEN
    assert write(s, "c_1", "a", 100, channel="web", nps=3) == WRITTEN
    assert write(s, "c_1", "a", 100, channel="web", nps=3) == DUPLICATE
    j = s.journeys["c_1"]
    assert sorted(j.timeline, key=lambda e: j.timeline[e]) == ["a", "b"]
    assert j.summary["count"] == "2" and j.summary["last_channel"] == "phone"
    assert (j.summary["first_ms"], j.summary["last_ms"]) == ("100", "200")
    assert j.summary["nps"] == "3" and j.summary["ch:web"] == "1"


def test_summary_ties_on_event_time_go_to_the_larger_event_id() -> None:
    s = JourneyStore(10)
    write(s, "c_1", "b", 100, channel="chat", journey={"type": "buy", "stage": "pay"})
    write(s, "c_1", "a", 100, channel="web", journey={"type": "buy", "stage": "browse"}, direction="outbound")
    summary = s.journeys["c_1"].summary
    assert summary["last_channel"] == "chat" and summary["stage:buy"] == "pay"
    assert (summary["in"], summary["out"]) == ("1", "1")


def test_the_cap_drops_the_oldest_and_refuses_older_ones() -> None:
    s = JourneyStore(2)
    write(s, "c_1", "a", 100, department="sales")
    write(s, "c_1", "b", 200)
    assert write(s, "c_1", "c", 300) == WRITTEN
    assert write(s, "c_1", "old", 50) == CAPPED
    j = s.journeys["c_1"]
    assert set(j.timeline) == {"b", "c"} and "a" not in j.touchpoints
    assert j.summary["count"] == "2" and j.summary["truncated"] == "1" and j.summary["first_ms"] == "200"
    assert "dept:sales" not in j.summary


def test_a_fold_moves_the_losers_journeys_into_the_survivor() -> None:
    s = JourneyStore(10)
    s.put("c_l", "a", 100, tp("a", channel="phone"), {"email:1": "a***@x"})
    s.put("c_s", "b", 200, tp("b"), {"email:2": "b***@x"})
    s.put("c_s", "a", 100, tp("a", channel="phone"), {})  # the same event in both: kept once
    s.fold("c_s", {"c_l", "c_gone"})
    assert set(s.journeys) == {"c_s"}
    j = s.journeys["c_s"]
    assert set(j.timeline) == {"a", "b"} and j.masked == {"email:1": "a***@x", "email:2": "b***@x"}
    assert (j.summary["count"], j.summary["ch:phone"], j.summary["ch:web"]) == ("2", "1", "1")


def test_given_facts_are_what_the_summary_counts() -> None:
    s = JourneyStore(10)
    s.put("c_1", "a", 100, tp("a"), {}, Facts("sms", "billing", "buy", "pay", "7", "out"))
    summary = s.journeys["c_1"].summary
    got = [summary[f] for f in ("ch:sms", "dept:billing", "stage:buy", "nps", "out")]
    assert got == ["1", "1", "pay", "7", "1"]
