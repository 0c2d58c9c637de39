"""Stalls (timers on absence, by the watermark), merges moving timers, drop-off judgement."""

from __future__ import annotations

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common import contracts
from services.common.timeutil import format_ms
from services.gap_detector.core.alerts import alert_id, rfc3339
from services.gap_detector.core.definitions import Definitions
from services.gap_detector.core.dropoff import cell_key, judge, minute_of
from services.gap_detector.core.logic import ArmTimer, DetectorLogic
from services.gap_detector.core.model import Entry
from services.gap_detector.core.state import CustomerState, decode_state, encode_buffer, encode_state
from tests.unit.gap_detector.conftest import CID, MIN, T0, entry

pytestmark = pytest.mark.unit

HOUR = 60 * MIN
PAY = {"type": "purchase", "stage": "payment"}  # sla 1h, importance 3


def test_non_terminal_stage_arms_a_timer_and_fires_at_the_deadline(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("x", T0, "web", journey=PAY), T0)
    assert st.timers == {"purchase": T0 + HOUR}
    assert logic.on_notify(CID, st, "purchase", T0 + HOUR - 1, T0).alerts == []  # not yet due
    st.timers["purchase"] = T0 + HOUR
    step = logic.on_notify(CID, st, "purchase", T0 + HOUR, T0)  # exactly at the deadline
    [alert] = step.alerts
    assert contracts.first_error(contracts.GAP_ALERT, alert) is None
    assert alert["severity"] == "high" and alert["evidence"]["event_ids"] == ["x"]
    assert alert["alert_id"] == alert_id("stall", CID, "purchase", "x")
    assert alert["evidence"]["sla_seconds"] == 3600 and alert["occurred_at"] == alert["evidence"]["deadline"]
    assert step.cells == {(cell_key("purchase", "payment", "web"), minute_of(T0)): [0, 1]}
    assert "purchase" not in st.timers and alert["alert_id"] in st.open_alerts


def test_progress_rearms_and_terminal_cancels(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("a", T0, journey={"type": "purchase", "stage": "cart"}), T0)
    logic.on_item(CID, st, entry("b", T0 + MIN, journey=PAY), T0)
    assert st.timers == {"purchase": T0 + MIN + HOUR}
    logic.on_item(CID, st, entry("c", T0 + 2 * MIN, journey={"type": "purchase", "stage": "converted"}), T0)
    assert st.timers == {}
    assert logic.on_notify(CID, st, "purchase", T0 + 10 * HOUR, T0).alerts == []


def test_late_older_event_does_not_move_the_stall_clock(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("x", T0, journey=PAY), T0)
    logic.on_item(CID, st, entry("old", T0 - MIN, journey={"type": "purchase", "stage": "converted"}), T0)
    assert st.timers == {"purchase": T0 + HOUR}


def test_late_event_after_a_stall_fired(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("x", T0, journey=PAY), T0)
    [stall] = logic.on_notify(CID, st, "purchase", T0 + HOUR, T0).alerts
    # A late event from before X changes nothing: no timer, no new alert, the stall stays open.
    step = logic.on_item(CID, st, entry("late", T0 - MIN, journey={"type": "purchase", "stage": "cart"}), T0)
    assert step.alerts == [] and step.closed == [] and st.timers == {}
    # A newer J-event is progress: it closes the stall alert and arms a new timer.
    step = logic.on_item(CID, st, entry("y", T0 + 2 * HOUR, journey=PAY), T0)
    assert step.closed == [stall["alert_id"]] and st.timers == {"purchase": T0 + 3 * HOUR}
    assert step.alerts == []  # the stall was true (y came after the deadline): closed, not retracted


def test_a_successor_that_arrives_late_but_was_on_time_retracts_the_stall(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("x", T0, "web", journey=PAY), T0)
    [stall] = logic.on_notify(CID, st, "purchase", T0 + HOUR, T0 + 2 * HOUR).alerts
    # y happened 10 min after x (within the 1 h SLA) but reached the detector only after the stall fired.
    step = logic.on_item(CID, st, entry("y", T0 + 10 * MIN, journey=PAY), T0 + 3 * HOUR)
    [retracted] = step.alerts
    assert contracts.first_error(contracts.GAP_ALERT, retracted) is None
    assert retracted["alert_id"] == stall["alert_id"] and retracted["status"] == "closed"
    assert retracted["evidence"] == stall["evidence"] and retracted["title"].startswith("Retracted")
    assert step.closed == [stall["alert_id"]] and stall["alert_id"] not in st.open_alerts
    # The drop-off it counted is taken back; redelivering y changes nothing.
    assert step.cells[(cell_key("purchase", "payment", "web"), minute_of(T0))] == [0, -1]
    assert logic.on_item(CID, st, entry("y", T0 + 10 * MIN, journey=PAY), T0 + 4 * HOUR).alerts == []


def test_redelivered_x_does_not_rearm_a_fired_stall(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("x", T0, journey=PAY), T0)
    logic.on_notify(CID, st, "purchase", T0 + HOUR, T0)
    logic.on_item(CID, st, entry("x", T0, journey=PAY), T0)
    assert st.timers == {}


def test_unknown_stage_uses_default_sla(logic: DetectorLogic, defs: Definitions) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("x", T0, journey={"type": "loyalty", "stage": "enrol"}), T0)
    assert st.timers == {"loyalty": T0 + defs.defaults.default_stall_sla_ms}


def test_merge_moves_a_pending_timer_and_finds_cross_customer_switch(logic: DetectorLogic) -> None:
    loser, survivor = CustomerState(), CustomerState()
    logic.on_item(
        "c_00000000000000bb", loser, entry("app", T0, "mobile_app", journey=PAY, outcome="failure"), T0
    )
    logic.on_item(CID, survivor, entry("call", T0 + 5 * MIN, "phone", intent="billing"), T0)
    assert loser.timers == {"purchase": T0 + HOUR} and survivor.timers == {}
    logic.on_item(CID, survivor, entry("call2", T0 + 6 * MIN, "phone", journey=PAY), T0)
    step = logic.on_fold(CID, survivor, loser, T0)
    # The survivor's own J-event is newer: its timer stands, the loser's is dropped.
    assert survivor.timers == {"purchase": T0 + 6 * MIN + HOUR}
    assert [a["evidence"]["event_ids"] for a in step.alerts if a["type"] == "channel_switch"] == [
        ["app", "call2"]
    ]
    assert logic.on_fold(CID, survivor, loser, T0).alerts == []  # idempotent


def test_merge_moves_the_loser_timer_when_its_mark_is_newer(logic: DetectorLogic) -> None:
    loser, survivor = CustomerState(), CustomerState()
    logic.on_item(CID, survivor, entry("s", T0, journey={"type": "purchase", "stage": "cart"}), T0)
    logic.on_item("c_00000000000000bb", loser, entry("l", T0 + MIN, journey=PAY), T0)
    logic.on_fold(CID, survivor, loser, T0)
    assert survivor.timers == {"purchase": T0 + MIN + HOUR}
    assert survivor.marks["purchase"].id == "l"


def test_a_late_event_older_than_the_latest_stalls_when_its_successor_came_past_its_deadline(
    logic: DetectorLogic,
) -> None:
    """Issue 11: a merged-away customer's J-event reaches its worker after the survivor's later one (3
    detectors, checkout stalls lost). It is judged as a superseded X, by the watermark or by a timer."""
    st = CustomerState()
    logic.on_item(CID, st, entry("later", T0 + 3 * HOUR, journey=PAY), T0)
    step = logic.on_item(CID, st, entry("x", T0, journey=PAY), T0, T0 + HOUR - 1)  # not due yet
    [(suffix, op)] = step.extra_timers.items()
    assert op == ArmTimer(T0 + HOUR) and st.superseded == {suffix: T0 + HOUR}
    assert st.timers == {"purchase": T0 + 4 * HOUR}  # the latest's own timer is untouched
    [stall] = logic.on_notify_superseded(CID, suffix, T0).alerts
    assert stall["alert_id"] == alert_id("stall", CID, "purchase", "x")
    # Due already: fired at once, and only once (a redelivery changes nothing).
    st2 = CustomerState()
    logic.on_item(CID, st2, entry("later", T0 + 3 * HOUR, journey=PAY), T0)
    [fired] = logic.on_item(CID, st2, entry("x", T0, journey=PAY), T0, T0 + 2 * HOUR).alerts
    assert fired["alert_id"] == stall["alert_id"] and fired["alert_id"] in st2.open_alerts
    assert st2.timers == {"purchase": T0 + 4 * HOUR}
    assert logic.on_item(CID, st2, entry("x", T0, journey=PAY), T0, T0 + 2 * HOUR).alerts == []


def test_a_late_event_followed_in_time_does_not_stall(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("later", T0 + 3 * HOUR, journey=PAY), T0)
    logic.on_item(CID, st, entry("next", T0 + 30 * MIN, journey=PAY), T0, T0)
    step = logic.on_item(CID, st, entry("x", T0, journey=PAY), T0, T0 + 2 * HOUR)
    assert step.alerts == [] and not any(
        isinstance(op, ArmTimer) and '"x"' in k for k, op in step.extra_timers.items()
    )


@pytest.mark.parametrize("newer", ["loser", "survivor"])
def test_a_fold_judges_the_pending_mark_that_lost(logic: DetectorLogic, newer: str) -> None:
    """Either side's pending X, outpaced by the other side's J-event past X's deadline, stalls: no timer of
    its own stands for it once the fold keeps the later mark."""
    loser, survivor = CustomerState(), CustomerState()
    old_side, new_side = (survivor, loser) if newer == "loser" else (loser, survivor)
    logic.on_item(CID, old_side, entry("x", T0, journey=PAY), T0)
    logic.on_item(CID, new_side, entry("y", T0 + 3 * HOUR, journey=PAY), T0)
    step = logic.on_fold(CID, survivor, loser, T0)
    assert survivor.marks["purchase"].id == "y" and survivor.timers == {"purchase": T0 + 4 * HOUR}
    [(suffix, op)] = step.extra_timers.items()
    assert op == ArmTimer(T0 + HOUR) and '"x"' in suffix
    assert logic.on_fold(CID, survivor, loser, T0).extra_timers == {}  # idempotent
    # Followed in time by the other side: no stall.
    loser, survivor = CustomerState(), CustomerState()
    logic.on_item(CID, survivor, entry("x", T0, journey=PAY), T0)
    logic.on_item(CID, loser, entry("y", T0 + 30 * MIN, journey=PAY), T0)
    assert logic.on_fold(CID, survivor, loser, T0).extra_timers == {}


def test_state_round_trips_through_the_hash_encoding(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("a", T0, "web", intent="x", device_key="d"), T0)
    logic.on_item(CID, st, entry("b", T0 + MIN, "phone", intent="x", journey=PAY), T0)
    back = decode_state(encode_state(st), dict(st.timers), {})
    assert back.buffer == st.buffer and back.marks == st.marks and back.timers == st.timers


def test_buffer_is_bounded(defs: Definitions) -> None:
    small = DetectorLogic(defs, max_buffer_events=5)
    st = CustomerState()
    for i in range(20):
        small.on_item(CID, st, entry(f"e{i}", T0 + i, intent="x"), T0)
    assert [e.id for e in st.buffer] == [f"e{i}" for i in range(15, 20)]
    assert st.ids == {e.id for e in st.buffer} and st.find("e19") and not st.find("e3")


def test_dropoff_spike_against_the_baseline(defs: Definitions) -> None:
    key = cell_key("purchase", "payment", "web")
    history = [(100, 5)] * 30  # baseline 5 %
    quiet = judge(key, T0, 40, 4, history, defs, T0)
    assert quiet.alert is None and quiet.rate == 0.1 and quiet.baseline == 0.05  # exactly 2x: not above
    spike = judge(key, T0, 40, 5, history, defs, T0)
    assert spike.alert is not None and spike.alert["severity"] == "high"
    assert contracts.first_error(contracts.GAP_ALERT, spike.alert) is None
    assert judge(key, T0, 40, 20, history, defs, T0).alert["severity"] == "critical"  # type: ignore[index]
    assert judge(key, T0, 19, 19, history, defs, T0).alert is None  # below the minimum volume
    # An empty history floors the baseline at 1 %.
    assert judge(key, T0, 20, 1, [], defs, T0).alert is not None


def test_abandoned_outcomes_count_as_dropoffs(logic: DetectorLogic) -> None:
    st = CustomerState()
    step = logic.on_item(CID, st, entry("x", T0 + 5, "web", journey=PAY, outcome="abandoned"), T0)
    assert step.cells == {(cell_key("purchase", "payment", "web"), T0): [1, 1]}


def test_x_superseded_past_its_deadline_stalls_at_once_when_the_watermark_is_there(
    logic: DetectorLogic,
) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("x", T0, journey=PAY), T0)
    # One replay batch carries both the event that moved the watermark and X's successor.
    step = logic.on_item(CID, st, entry("y", T0 + 2 * HOUR, journey=PAY), T0, wm=T0 + 2 * HOUR - 5 * MIN)
    [stall] = step.alerts
    assert stall["evidence"]["event_ids"] == ["x"] and st.timers == {"purchase": T0 + 3 * HOUR}


def test_x_superseded_just_past_its_deadline_waits_for_the_watermark(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("x", T0, journey=PAY), T0)
    step = logic.on_item(CID, st, entry("y", T0 + HOUR + 1000, journey=PAY), T0, wm=T0 + HOUR - 4 * MIN)
    assert step.alerts == [] and list(step.extra_timers.values()) == [ArmTimer(T0 + HOUR)]
    [suffix] = step.extra_timers
    [stall] = logic.on_notify_superseded(CID, suffix, T0).alerts
    assert stall["evidence"]["event_ids"] == ["x"] and stall["alert_id"] == alert_id(
        "stall", CID, "purchase", "x"
    )


def test_x_followed_within_its_sla_does_not_stall(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("x", T0, journey=PAY), T0)
    step = logic.on_item(
        CID, st, entry("y", T0 + HOUR, journey=PAY), T0, wm=T0 + 2 * HOUR
    )  # exactly at deadline
    assert step.alerts == [] and step.extra_timers == {}


def test_a_version_1_state_hash_still_decodes(logic: DetectorLogic) -> None:
    # Version 1 kept the entry booleans as 0/1 and no open-alert summaries: they came from the alert docs.
    st = CustomerState()
    logic.on_item(CID, st, entry("a", T0, "web", intent="x", journey=PAY), T0)
    [alert] = logic.on_item(CID, st, entry("b", T0 + MIN, "phone", intent="x", journey=PAY), T0).alerts
    v1 = {
        b"v": b"1",
        b"h": b"-1",
        b"s": b"{}",
        b"buf": orjson.dumps(
            [
                [
                    e.t,
                    e.id,
                    e.channel,
                    int(e.inbound),
                    int(e.onstage),
                    e.journey,
                    e.stage,
                    e.intent,
                    e.outcome,
                    e.department,
                    e.device_key,
                    e.device_type,
                    list(e.alerted),
                ]
                for e in st.buffer
            ]
        ),
        b"j:purchase": orjson.dumps(st.marks["purchase"].to_json()),
    }
    back = decode_state(v1, dict(st.timers), {alert["alert_id"].encode(): orjson.dumps(alert)})
    assert back.buffer == st.buffer and back.marks == st.marks and back.open_alerts == st.open_alerts
    assert encode_state(back)[b"v"] == b"2" and b"o" in encode_state(back)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 4_102_444_800_000))  # 1970 .. 2100
def test_alert_timestamps_format_like_timeutil(ms: int) -> None:
    assert rfc3339(ms) == format_ms(ms)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.booleans(), st.integers(0, 3)), min_size=1, max_size=40))
def test_a_buffer_encoded_from_its_last_encoding_has_the_same_bytes(ops: list[tuple[int, bool, int]]) -> None:
    # Events at random times (in order or late), alerted tuples replaced, trims from the front.
    state, prev = CustomerState(), None
    for i, (t, relabel, trim) in enumerate(ops):
        state.insert(Entry(T0 + t * MIN, f"e{i:02d}", "web", True, True))
        if relabel:
            state.buffer[t % len(state.buffer)].alerted = (f"channel_switch:{i}",)
        if trim:
            state.trim(max(1, len(state.buffer) - trim), 10**12)
        prev = encode_buffer(state.buffer, prev)
        assert prev.data == msgspec.json.encode(state.buffer)
        starts = [1, *(end + 1 for end in prev.ends[:-1])]
        assert [prev.data[a:b] for a, b in zip(starts, prev.ends, strict=True)] == [
            msgspec.json.encode(e) for e in state.buffer
        ]


def test_a_stall_retracted_after_a_merge_keeps_the_id_it_was_published_with(logic: DetectorLogic) -> None:
    loser, survivor = "c_00000000000000aa", "c_00000000000000bb"
    lst, sst = CustomerState(), CustomerState()
    logic.on_item(loser, lst, entry("x", T0, "web", journey=PAY), T0)
    [stall] = logic.on_notify(loser, lst, "purchase", T0 + HOUR, T0 + 2 * HOUR).alerts
    logic.on_fold(survivor, sst, lst, T0 + 2 * HOUR)  # the loser's journey and open stall move over
    step = logic.on_item(survivor, sst, entry("y", T0 + 5 * MIN, journey=PAY), T0 + 3 * HOUR)
    [retracted] = step.alerts
    assert retracted["alert_id"] == stall["alert_id"] == alert_id("stall", loser, "purchase", "x")
    assert retracted["customer_id"] == loser  # the same record key, so the same partition as the alert
    assert retracted["status"] == "closed" and not sst.open_alerts
    # The state round trip keeps what fired (and states stored before 'fired' existed still decode).
    again = CustomerState()
    logic.on_item(loser, again, entry("x", T0, "web", journey=PAY), T0)
    logic.on_notify(loser, again, "purchase", T0 + HOUR, T0 + 2 * HOUR)
    fields = encode_state(again)
    assert decode_state(fields, {}, {}).marks["purchase"].fired == stall["alert_id"]
    old = dict(fields)
    old[b"j:purchase"] = orjson.dumps(orjson.loads(fields[b"j:purchase"])[:6])
    assert decode_state(old, {}, {}).marks["purchase"].fired is None
