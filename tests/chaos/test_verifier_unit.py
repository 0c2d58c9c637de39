"""The chaos suite's pure parts: the fault plan and the verifier's accounting (no I/O)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.chaos import schedule as s
from tests.chaos.readback import Rec
from tests.chaos.verify import EventInfo, Outputs, verify

pytestmark = [pytest.mark.unit, pytest.mark.chaos]


def test_the_short_plan_kills_each_role_twice_bounces_both_servers_and_scales_out_and_in() -> None:
    faults = s.plan(7, 100.0, s.intensity_for(0))
    kinds = [f.kind for f in faults]
    assert kinds.count(s.KILL_STITCHER) == kinds.count(s.KILL_DETECTOR) == 2
    assert kinds.count(s.BOUNCE_KAFKA) == kinds.count(s.BOUNCE_REDIS) == 1
    for add, remove in ((s.ADD_STITCHER, s.REMOVE_STITCHER), (s.ADD_DETECTOR, s.REMOVE_DETECTOR)):
        assert kinds.index(add) < kinds.index(remove)
    assert all(0 < f.at_s <= 85.0 for f in faults)
    assert [f.at_s for f in faults] == sorted(f.at_s for f in faults)
    assert s.plan(7, 100.0, s.intensity_for(0)) == faults  # a seed replays the same plan
    assert s.plan(8, 100.0, s.intensity_for(0)) != faults


def test_a_long_plan_scales_with_the_minutes() -> None:
    kinds = [f.kind for f in s.plan(1, 900.0, s.intensity_for(20))]
    assert kinds.count(s.KILL_STITCHER) == 30 and kinds.count(s.BOUNCE_KAFKA) == 5


def _rec(offset: int, doc: dict[str, Any], ts: int = 1000, **headers: str) -> Rec:
    return Rec(0, offset, ts, None, orjson.dumps(doc), {k: v.encode() for k, v in headers.items()})


def _alert(aid: str, cid: str, trigger: str, kind: str = "channel_switch") -> dict[str, Any]:
    return {
        "alert_id": aid,
        "type": kind,
        "customer_id": cid,
        "status": "open",
        "severity": "low",
        "evidence": {"event_ids": [trigger]},
    }


def _dead(offset: int, source_offset: int) -> Rec:
    return _rec(
        offset,
        {},
        dlq_source_topic="chaos-channel-events",
        dlq_source_partition="0",
        dlq_source_offset=str(source_offset),
        dlq_reason="malformed_json",
    )


TRUTH: dict[str, Any] = {
    "customers": {"A": {"events": ["e1", "e2"]}, "B": {"events": ["e3"]}},
    "alerts": [{"type": "channel_switch", "customer": "A", "trigger": "e2"}],
    "incidents": [],
    "counts": {"malformed": 2},
}
EVENTS = {"e1": EventInfo("A", 1, None), "e2": EventInfo("A", 2, None), "e3": EventInfo("B", 3, None)}


def _outputs(**change: Any) -> Outputs:
    base: dict[str, Any] = dict(
        stitched=[
            _rec(i, {"event_id": e, "customer_id": c})
            for i, (e, c) in enumerate((("e1", "c1"), ("e2", "c1"), ("e3", "c3")))
        ],
        alerts=[_rec(0, _alert("a1", "c1", "e2"))],
        dlq=[_dead(0, 5), _dead(1, 9)],
        bad_offsets={(0, 5), (0, 9)},
        final_customer={"e1": "c1", "e2": "c1", "e3": "c3"},
        timelines={"c1": ["e1", "e2"], "c3": ["e3"]},
        redis_alerts={"a1": _alert("a1", "c1", "e2")},
        open_alerts={"c1": ["a1"]},
        resolve={"c1": "c1", "c3": "c3"},
        fault_times=[],
    )
    base.update(change)
    return Outputs(**base)


def test_a_clean_run_passes() -> None:
    v = verify(TRUTH, EVENTS, _outputs())
    assert v.failures == []
    assert v.figures["lost"] == 0 and v.figures["dlq_duplicates"] == 0
    assert v.figures["bad_inputs_dead_lettered"] == 2


def test_a_lost_event_an_event_in_two_journeys_and_a_missing_dead_letter_all_fail() -> None:
    v = verify(TRUTH, EVENTS, _outputs(timelines={"c1": ["e1", "e3"], "c3": ["e3"]}, dlq=[_dead(0, 5)] * 2))
    assert v.figures["lost"] == 1 and v.figures["in_several_journeys"] == 1
    assert v.figures["dlq_duplicates"] == 1
    assert any("not in their final customer's journey" in f for f in v.failures)
    assert any("1 of 2 bad inputs not on the DLQ" in f for f in v.failures)


def test_one_alert_under_two_ids_in_redis_and_a_false_alert_fail() -> None:
    extra = _alert("a2", "c9", "e2")  # c9 was merged into c1: the same alert again
    false = _alert("a3", "c3", "e3")
    v = verify(
        TRUTH,
        EVENTS,
        _outputs(
            redis_alerts={"a1": _alert("a1", "c1", "e2"), "a2": extra},
            resolve={"c1": "c1", "c9": "c1"},
            alerts=[_rec(0, _alert("a1", "c1", "e2")), _rec(1, false)],
        ),
    )
    assert v.figures["redis_duplicate_alerts"] == 1
    assert any("channel_switch: precision 0.5000 (1 false of 2)" in f for f in v.failures)


def test_a_repeat_on_the_topic_counts_as_unexplained_only_without_a_fault_between_the_copies() -> None:
    copies = [_rec(0, _alert("a1", "c1", "e2"), ts=10_000), _rec(1, _alert("a1", "c1", "e2"), ts=10_400)]
    quiet = verify(TRUTH, EVENTS, _outputs(alerts=copies))
    assert quiet.figures["topic_duplicate_alerts"] == quiet.figures["topic_duplicates_without_fault"] == 1
    crashed = verify(TRUTH, EVENTS, _outputs(alerts=copies, fault_times=[(10.2, 11.0, s.KILL_DETECTOR)]))
    assert crashed.figures["topic_duplicate_alerts"] == 1
    assert crashed.figures["topic_duplicates_without_fault"] == 0


def test_a_false_stall_says_whether_its_successor_was_sent_before_it_and_whether_it_was_retracted() -> None:
    journey = {"type": "purchase", "stage": "browse"}
    events = {
        "e1": EventInfo("A", 1, "purchase"),
        "e2": EventInfo("A", 2, "purchase"),
        "e3": EventInfo("B", 3, None),
    }
    stall = {**_alert("s1", "c1", "e1", "stall"), "journey": journey}
    stitched = [
        _rec(0, {"event_id": "e1", "customer_id": "c1"}, ts=1_000),
        _rec(1, {"event_id": "e2", "customer_id": "c1"}, ts=9_000),  # sent after the stall
        _rec(2, {"event_id": "e3", "customer_id": "c3"}, ts=9_500),
    ]
    early = verify(TRUTH, events, _outputs(stitched=stitched, alerts=[_rec(0, stall, ts=5_000)]))
    assert early.figures["false_stalls"] == {"successor not sent yet": 1}
    assert "next event e2 sent 4.0 s after the stall" in early.examples["false stalls"][0]
    undone = [
        _rec(0, stall, ts=5_000),
        _rec(1, {**stall, "status": "closed"}, ts=9_100),
        _rec(2, stall, ts=9_200),
    ]
    again = verify(TRUTH, events, _outputs(stitched=stitched, alerts=undone))
    assert again.figures["false_stalls"] == {"successor not sent yet, retracted then re-published open": 1}
    retracted = verify(TRUTH, events, _outputs(stitched=stitched, alerts=undone[:2]))
    assert retracted.figures["false_stalls"] == {}
