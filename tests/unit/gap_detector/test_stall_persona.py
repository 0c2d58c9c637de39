"""Stall alerts carry the customer's persona (gap_alert 1.2): a stall is raised from a mark, not from an
event, so it takes the persona of the customer's latest buffered event that names one."""

from __future__ import annotations

import pytest

from services.common import contracts
from services.gap_detector.core.logic import DetectorLogic, persona_of
from services.gap_detector.core.state import CustomerState
from tests.unit.gap_detector.conftest import CID, MIN, T0, entry

pytestmark = pytest.mark.unit

HOUR = 60 * MIN
PAY = {"type": "purchase", "stage": "payment"}  # sla 1 h


def test_a_stall_carries_the_persona_of_the_latest_event_naming_one(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("a", T0, intent="billing", persona="store_loyal"), T0)
    logic.on_item(CID, st, entry("b", T0 + MIN, intent="billing", persona="price_hunter"), T0)
    logic.on_item(CID, st, entry("x", T0 + 2 * MIN, journey=PAY), T0)  # X itself names none
    # Delivered last, but earlier by event time: the latest by event time still wins.
    logic.on_item(CID, st, entry("late", T0 + MIN // 2, intent="billing", persona="digital_native"), T0)
    [stall] = logic.on_notify(CID, st, "purchase", T0 + 2 * MIN + HOUR, T0).alerts
    assert stall["type"] == "stall" and stall["persona"] == "price_hunter"
    assert contracts.first_error(contracts.GAP_ALERT, stall) is None


def test_a_customer_without_a_persona_gets_a_stall_without_one(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("x", T0, journey=PAY), T0)
    [stall] = logic.on_notify(CID, st, "purchase", T0 + HOUR, T0).alerts
    assert "persona" not in stall and contracts.first_error(contracts.GAP_ALERT, stall) is None


def test_the_retraction_of_a_stall_carries_its_persona_too(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("x", T0, journey=PAY, persona="busy_professional"), T0)
    [stall] = logic.on_notify(CID, st, "purchase", T0 + HOUR, T0 + 2 * HOUR).alerts
    [retracted] = logic.on_item(CID, st, entry("y", T0 + 10 * MIN, journey=PAY), T0 + 3 * HOUR).alerts
    assert retracted["status"] == "closed" and retracted["alert_id"] == stall["alert_id"]
    assert stall["persona"] == retracted["persona"] == "busy_professional"


def test_a_superseded_stall_takes_the_persona_from_the_state_it_is_given(logic: DetectorLogic) -> None:
    st = CustomerState()
    logic.on_item(CID, st, entry("x", T0, journey=PAY, persona="phone_first_senior"), T0)
    step = logic.on_item(CID, st, entry("y", T0 + HOUR + 1000, journey=PAY), T0, wm=T0 + HOUR - 4 * MIN)
    [suffix] = step.extra_timers
    [with_state] = logic.on_notify_superseded(CID, suffix, T0, st).alerts
    assert with_state["persona"] == "phone_first_senior"
    [without] = logic.on_notify_superseded(CID, suffix, T0).alerts  # the member alone names none
    assert "persona" not in without and without["alert_id"] == with_state["alert_id"]


def test_after_a_merge_the_stall_sees_the_merged_events(logic: DetectorLogic) -> None:
    loser, survivor = CustomerState(), CustomerState()
    logic.on_item(CID, survivor, entry("s", T0, journey=PAY, persona="store_loyal"), T0)
    logic.on_item(
        "c_00000000000000bb",
        loser,
        entry("l", T0 + MIN, intent="billing", persona="small_business_owner"),
        T0,
    )
    logic.on_fold(CID, survivor, loser, T0)
    assert persona_of(survivor) == "small_business_owner"
    [stall] = logic.on_notify(CID, survivor, "purchase", T0 + HOUR, T0).alerts
    assert stall["persona"] == "small_business_owner"
