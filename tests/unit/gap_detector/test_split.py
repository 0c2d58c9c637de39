"""A split as the detector follows it (core/split.py): what belongs to the new customer's events leaves
the kept state, once; folded into the new customer, and back by the undo's fold."""

from __future__ import annotations

import orjson
import pytest

from services.gap_detector.core.logic import DetectorLogic
from services.gap_detector.core.split import take_split, trigger_of
from services.gap_detector.core.state import CustomerState, fold
from tests.unit.gap_detector.conftest import CID, MIN, T0, entry

pytestmark = pytest.mark.unit

HOUR = 60 * MIN
PAY = {"type": "purchase", "stage": "payment"}  # sla 1h
NEW = "c_00000000000000bb"


def merged_state(logic: DetectorLogic) -> tuple[CustomerState, dict[str, bytes], str]:
    """Two people as one customer: 'a' is the kept person's, 'x' (a payment that stalls) the other's."""
    st = CustomerState()
    logic.on_item(CID, st, entry("a", T0, "web", intent="billing"), T0)
    logic.on_item(CID, st, entry("x", T0 + MIN, "app", journey=PAY), T0)
    [stall] = logic.on_notify(CID, st, "purchase", T0 + MIN + HOUR, T0).alerts
    return st, {stall["alert_id"]: orjson.dumps(stall)}, stall["alert_id"]


def test_the_new_customers_events_marks_and_alerts_leave_the_kept_state(logic: DetectorLogic) -> None:
    kept, docs, stall = merged_state(logic)
    part, moved = take_split(kept, {"x", "z-never-seen"}, docs)
    assert [e.id for e in kept.buffer] == ["a"] and not kept.find("x")
    assert kept.marks == {} and kept.open_alerts == {}
    assert [e.id for e in part.buffer] == ["x"] and part.marks["purchase"].fired == stall
    assert set(part.open_alerts) == {stall} and moved == docs
    assert part.horizon == kept.horizon


def test_a_pending_stall_timer_moves_with_its_mark(logic: DetectorLogic) -> None:
    kept = CustomerState()
    logic.on_item(CID, kept, entry("a", T0, "web", intent="billing"), T0)
    logic.on_item(CID, kept, entry("x", T0 + MIN, "app", journey=PAY), T0)
    assert kept.timers == {"purchase": T0 + MIN + HOUR}
    part, moved = take_split(kept, {"x"}, {})
    assert kept.timers == {} and kept.marks == {} and moved == {}
    assert part.timers == {"purchase": T0 + MIN + HOUR} and part.marks["purchase"].id == "x"


def test_taking_again_takes_nothing(logic: DetectorLogic) -> None:
    kept, docs, _ = merged_state(logic)
    take_split(kept, {"x"}, docs)
    before = (list(kept.buffer), dict(kept.marks), dict(kept.timers), dict(kept.open_alerts))
    part, moved = take_split(kept, {"x"}, docs)
    assert (part.buffer, part.marks, part.timers, part.open_alerts, moved) == ([], {}, {}, {}, {})
    assert (kept.buffer, kept.marks, kept.timers, kept.open_alerts) == before


def test_an_alert_stays_with_the_customer_of_its_trigger_event(logic: DetectorLogic) -> None:
    kept, docs, stall = merged_state(logic)
    part, moved = take_split(kept, {"a"}, docs)  # the other way: 'a' leaves, the stall on 'x' stays
    assert [e.id for e in part.buffer] == ["a"] and moved == {}
    assert set(kept.open_alerts) == {stall} and kept.marks["purchase"].id == "x"
    assert trigger_of({"evidence": {"event_ids": ["p", "e"]}}) == "e" and trigger_of({"evidence": {}}) is None


def test_folded_into_the_new_customer_and_back_by_the_undo(logic: DetectorLogic) -> None:
    kept, docs, stall = merged_state(logic)
    new = CustomerState()
    logic.on_item(NEW, new, entry("later", T0 + 3 * MIN, "app", intent="billing"), T0)  # after the split
    part, _ = take_split(kept, {"x", "later"}, docs)
    fold(new, part)
    assert [e.id for e in new.buffer] == ["x", "later"] and set(new.open_alerts) == {stall}
    fold(kept, new)  # the undo is a merge of the new customer back into the kept one
    assert [e.id for e in kept.buffer] == ["a", "x", "later"] and set(kept.open_alerts) == {stall}
