"""The event-triggered rules of docs/RULES.md with their boundaries (exactly at W fires, W + 1 s not)."""

from __future__ import annotations

from typing import Any

import pytest

from services.common import contracts
from services.gap_detector.core.alerts import alert_id
from services.gap_detector.core.definitions import Definitions
from services.gap_detector.core.logic import DetectorLogic
from services.gap_detector.core.state import CustomerState
from tests.unit.gap_detector.conftest import CID, MIN, T0, entry

pytestmark = pytest.mark.unit

PURCHASE = {"type": "purchase", "stage": "checkout"}
W_PURCHASE = 60 * MIN  # purchase overrides channel_switch_window to 1h


def run(logic: DetectorLogic, *entries: Any, state: CustomerState | None = None) -> list[dict[str, Any]]:
    st = state if state is not None else CustomerState()
    out = []
    for e in entries:
        out += logic.on_item(CID, st, e, T0).alerts
    for a in out:
        assert contracts.first_error(contracts.GAP_ALERT, a) is None, a
    return out


def of(alerts: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["type"] == kind]


@pytest.mark.parametrize(("gap", "fires"), [(W_PURCHASE, True), (W_PURCHASE + 1000, False)])
def test_channel_switch_window_boundary(logic: DetectorLogic, gap: int, fires: bool) -> None:
    alerts = of(
        run(
            logic,
            entry("app-1", T0, "mobile_app", journey=PURCHASE, outcome="failure"),
            entry("call-1", T0 + gap, "phone", journey=PURCHASE),
        ),
        "channel_switch",
    )
    assert bool(alerts) is fires
    if fires:
        a = alerts[0]
        assert a["severity"] == "high" and a["evidence"]["event_ids"] == ["app-1", "call-1"]
        assert (
            a["evidence"]["channels"] == ["mobile_app", "phone"] and a["evidence"]["window_seconds"] == 3600
        )
        assert a["alert_id"] == alert_id("channel_switch", CID, "call-1") and "mobile_app" in a["title"]


def test_channel_switch_medium_when_not_self_service_to_assisted(logic: DetectorLogic) -> None:
    alerts = of(
        run(
            logic, entry("c1", T0, "phone", intent="billing"), entry("c2", T0 + MIN, "chat", intent="billing")
        ),
        "channel_switch",
    )
    assert [a["severity"] for a in alerts] == ["medium"]
    assert alerts[0]["intent"] == "billing" and "journey" not in alerts[0]


@pytest.mark.parametrize(
    "prev_extra",
    [
        {"outcome": "success"},
        {"outcome": "resolved"},
        {"journey": {"type": "purchase", "stage": "converted"}},
    ],
)
def test_channel_switch_needs_unresolved_predecessor(
    logic: DetectorLogic, prev_extra: dict[str, Any]
) -> None:
    prev = {"journey": PURCHASE, **prev_extra}
    assert not of(
        run(logic, entry("a", T0, "web", **prev), entry("b", T0 + MIN, "phone", journey=PURCHASE)),
        "channel_switch",
    )


def test_channel_switch_ignores_outbound_offstage_other_key_and_same_channel(logic: DetectorLogic) -> None:
    alerts = run(
        logic,
        entry("a", T0, "web", intent="x"),
        entry("b", T0 + 1000, "email", intent="x", direction="outbound"),
        entry("c", T0 + 2000, "sms", intent="x", visibility="offstage"),
        entry("d", T0 + 3000, "phone", intent="y"),
        entry("e", T0 + 4000, "web", intent="x"),
    )
    assert not of(alerts, "channel_switch")


def test_late_arrival_is_judged_by_event_time(logic: DetectorLogic) -> None:
    # web@0, phone@20 arrive; then chat@10 arrives late: it is phone's predecessor now.
    st = CustomerState()
    first = run(
        logic, entry("w", T0, "web", intent="x"), entry("p", T0 + 20 * MIN, "phone", intent="x"), state=st
    )
    assert [a["evidence"]["event_ids"] for a in of(first, "channel_switch")] == [["w", "p"]]
    late = run(logic, entry("c", T0 + 10 * MIN, "chat", intent="x"), state=st)
    # chat's own switch (web -> chat) alerts; phone's alert is re-published under the same id with its
    # new predecessor and severity (chat -> phone is assisted -> assisted: medium).
    switches = of(late, "channel_switch")
    assert [a["evidence"]["event_ids"] for a in switches] == [["w", "c"], ["c", "p"]]
    assert switches[1]["alert_id"] == of(first, "channel_switch")[0]["alert_id"]
    assert [a["severity"] for a in switches] == ["high", "medium"]


def test_late_arrival_retracts_an_alert_that_is_no_longer_true(logic: DetectorLogic) -> None:
    st = CustomerState()
    first = run(
        logic, entry("w", T0, "web", intent="x"), entry("p", T0 + 20 * MIN, "phone", intent="x"), state=st
    )
    [raised] = of(first, "channel_switch")
    assert raised["alert_id"] in st.open_alerts
    # A late phone call at minute 10 becomes p's predecessor: phone -> phone is no switch any more.
    late = run(logic, entry("p0", T0 + 10 * MIN, "phone", intent="x"), state=st)
    retracted = [a for a in late if a["alert_id"] == raised["alert_id"]]
    assert [a["status"] for a in retracted] == ["closed"]
    assert raised["alert_id"] not in st.open_alerts


def test_event_older_than_the_buffer_horizon_is_ignored(defs: Definitions) -> None:
    small = DetectorLogic(defs, max_buffer_events=2)
    st = CustomerState()
    for i in range(4):
        small.on_item(CID, st, entry(f"e{i}", T0 + i * MIN, "web", intent="x"), T0)
    step = small.on_item(CID, st, entry("old", T0 + 30_000, "phone", intent="x"), T0)
    assert step.alerts == [] and not st.find("old")


def test_redelivered_event_changes_nothing(logic: DetectorLogic) -> None:
    st = CustomerState()
    e1, e2 = entry("a", T0, "web", intent="x"), entry("b", T0 + MIN, "phone", intent="x")
    assert run(logic, e1, e2, state=st)
    assert run(logic, entry("b", T0 + MIN, "phone", intent="x"), state=st) == []


@pytest.mark.parametrize(("gap", "fires"), [(30 * MIN, True), (30 * MIN + 1000, False)])
def test_device_switch_boundary(logic: DetectorLogic, gap: int, fires: bool) -> None:
    alerts = of(
        run(
            logic,
            entry("a", T0, "web", device_key="d1", device={"type": "desktop"}),
            entry("b", T0 + gap, "mobile_app", device_key="d2", device={"type": "phone"}),
        ),
        "device_switch",
    )
    assert bool(alerts) is fires
    if fires:
        assert alerts[0]["severity"] == "low" and alerts[0]["evidence"]["devices"] == ["desktop", "phone"]


def test_device_switch_same_device_is_quiet(logic: DetectorLogic) -> None:
    assert not of(
        run(logic, entry("a", T0, device_key="d1"), entry("b", T0 + 1, device_key="d1")), "device_switch"
    )


@pytest.mark.parametrize(("gap", "fires"), [(120 * MIN, True), (120 * MIN + 1000, False)])
def test_department_handoff_boundary(logic: DetectorLogic, gap: int, fires: bool) -> None:
    alerts = of(
        run(
            logic,
            entry("a", T0, "phone", intent="bill", department="billing"),
            entry("b", T0 + gap, "phone", intent="bill", department="tech"),
        ),
        "department_handoff",
    )
    assert bool(alerts) is fires
    if fires:
        assert alerts[0]["severity"] == "medium" and alerts[0]["evidence"]["departments"] == [
            "billing",
            "tech",
        ]


def test_department_handoff_chain_of_three_is_high(logic: DetectorLogic) -> None:
    alerts = of(
        run(
            logic,
            entry("a", T0, "phone", intent="bill", department="billing"),
            entry("b", T0 + MIN, "phone", intent="bill", department="tech"),
            entry("c", T0 + 2 * MIN, "chat", intent="bill", department="retention"),
            entry("d", T0 + 3 * MIN, "chat", intent="other", department="sales"),
        ),
        "department_handoff",
    )
    assert [a["severity"] for a in alerts] == ["medium", "high"]


def test_repeat_contact_nth_and_beyond(logic: DetectorLogic) -> None:
    day = 24 * 60 * MIN
    alerts = of(
        run(
            logic,
            entry("c1", T0, "phone", intent="bill"),
            entry("w", T0 + day, "web", intent="bill"),  # self-service: not counted
            entry("o", T0 + day, "phone", intent="bill", direction="outbound"),
            entry("c2", T0 + 2 * day, "chat", intent="bill"),
            entry("c3", T0 + 7 * day, "phone", intent="bill"),  # exactly at W from c1
            entry("c4", T0 + 7 * day + 1, "phone", intent="bill"),
        ),
        "repeat_contact",
    )
    assert [(a["evidence"]["count"], a["severity"]) for a in alerts] == [(3, "medium"), (3, "medium")]
    assert alerts[0]["evidence"]["event_ids"] == ["c1", "c2", "c3"]
    assert alerts[1]["evidence"]["event_ids"] == ["c2", "c3", "c4"]  # c1 is now W + 1 ms away


def test_repeat_contact_one_second_past_window(logic: DetectorLogic) -> None:
    day = 24 * 60 * MIN
    alerts = run(
        logic,
        entry("c1", T0, "phone", intent="bill"),
        entry("c2", T0 + day, "phone", intent="bill"),
        entry("c3", T0 + 7 * day + 1000, "phone", intent="bill"),
    )
    assert not of(alerts, "repeat_contact")


def test_repeat_contact_above_n_is_high(logic: DetectorLogic) -> None:
    alerts = of(
        run(logic, *(entry(f"c{i}", T0 + i * MIN, "phone", intent="bill") for i in range(4))),
        "repeat_contact",
    )
    assert [a["severity"] for a in alerts] == ["medium", "high"]
    assert alerts[-1]["evidence"]["event_ids"][-1] == "c3"


def test_late_contact_completes_a_repeat(logic: DetectorLogic) -> None:
    st = CustomerState()
    assert not run(
        logic,
        entry("c1", T0, "phone", intent="bill"),
        entry("c3", T0 + 2 * MIN, "phone", intent="bill"),
        state=st,
    )
    late = of(run(logic, entry("c2", T0 + MIN, "phone", intent="bill"), state=st), "repeat_contact")
    # c3 now has three contacts in its window (it is the trigger); c2 itself has only two.
    assert [a["evidence"]["event_ids"] for a in late] == [["c1", "c2", "c3"]]
