"""The oracle on hand-made histories at the boundaries docs/RULES.md fixes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.gap_detector.core.definitions import load_definitions
from services.simulator.oracle import MINUTE_MS, Expected, OEvent, Oracle

pytestmark = pytest.mark.unit

DEFS = load_definitions()
ORACLE = Oracle(DEFS)
MIN, HOUR, DAY = MINUTE_MS, 3_600_000, 86_400_000
T0 = 1_700_000_000_000
FAR = T0 + 365 * DAY  # a final watermark far after everything


def ev(n: int, t: int, channel: str = "web", **kw: Any) -> OEvent:
    return OEvent(event_id=f"e{n:03d}", t=T0 + t, customer="C", channel=channel, **kw)


def alerts(events: list[OEvent], kind: str, wm: int = FAR) -> list[Expected]:
    return [a for a in ORACLE.customer_alerts(events, wm) if a.type == kind]


def test_channel_switch_fires_exactly_at_the_window_not_a_second_later() -> None:
    w = DEFS.defaults.channel_switch_window_ms
    at = [ev(1, 0, "web", intent="billing", outcome="failure"), ev(2, w, "phone", intent="billing")]
    past = [ev(1, 0, "web", intent="billing", outcome="failure"), ev(2, w + 1000, "phone", intent="billing")]
    (a,) = alerts(at, "channel_switch")
    assert a.event_ids == ("e001", "e002") and a.severity == "high"
    assert alerts(past, "channel_switch") == []


def test_channel_switch_uses_the_journey_window_and_needs_an_unresolved_predecessor() -> None:
    j = {"journey_type": "purchase", "stage": "checkout"}
    hour = [ev(1, 0, "web", **j), ev(2, HOUR, "chat", **j)]
    assert len(alerts(hour, "channel_switch")) == 1  # purchase overrides the window to 1h
    resolved = [ev(1, 0, "web", outcome="success", **j), ev(2, MIN, "chat", **j)]
    assert alerts(resolved, "channel_switch") == []
    terminal = [ev(1, 0, "web", journey_type="purchase", stage="converted"), ev(2, MIN, "chat", **j)]
    assert alerts(terminal, "channel_switch") == []
    same_channel = [ev(1, 0, "web", **j), ev(2, MIN, "web", **j)]
    assert alerts(same_channel, "channel_switch") == []


def test_channel_switch_ignores_outbound_and_offstage_and_other_keys() -> None:
    evs = [
        ev(1, 0, "web", intent="a"),
        ev(2, MIN, "email", intent="a", direction="outbound"),
        ev(3, 2 * MIN, "other", intent="a", visibility="offstage"),
        ev(4, 3 * MIN, "chat", intent="b"),
    ]
    assert alerts(evs, "channel_switch") == []
    (a,) = alerts([*evs, ev(5, 4 * MIN, "phone", intent="a")], "channel_switch")
    assert a.event_ids == ("e001", "e005") and a.severity == "high"


def test_channel_switch_between_assisted_channels_is_medium() -> None:
    (a,) = alerts([ev(1, 0, "chat", intent="x"), ev(2, MIN, "phone", intent="x")], "channel_switch")
    assert a.severity == "medium"


def test_late_arrivals_are_placed_by_event_time() -> None:
    evs = [ev(2, 10 * MIN, "phone", intent="x"), ev(1, 0, "web", intent="x")]  # listed out of order
    (a,) = alerts(evs, "channel_switch")
    assert a.event_ids == ("e001", "e002")


def test_device_switch_window_and_any_key() -> None:
    w = DEFS.defaults.device_switch_window_ms
    evs = [
        ev(1, 0, device_key="d1"),
        ev(2, w, "mobile_app", device_key="d2", intent="z"),
        ev(3, 2 * w + 1000, device_key="d1"),
    ]
    (a,) = alerts(evs, "device_switch")
    assert a.event_ids == ("e001", "e002") and a.severity == "low"


def test_handoff_and_its_high_severity_chain() -> None:
    w = DEFS.defaults.handoff_window_ms
    evs = [
        ev(1, 0, "phone", intent="x", department="sales"),
        ev(2, 10 * MIN, "phone", intent="x", department="billing"),
        ev(3, 20 * MIN, "phone", intent="x", department="tech"),
        ev(4, 20 * MIN + w + 1000, "phone", intent="x", department="sales"),
    ]
    got = alerts(evs, "department_handoff")
    assert [(a.event_ids, a.severity) for a in got] == [
        (("e001", "e002"), "medium"),
        (("e002", "e003"), "high"),
    ]


def test_repeat_contact_counts_assisted_contacts_in_the_window() -> None:
    w = DEFS.defaults.repeat_contact_window_ms
    evs = [
        ev(1, 0, "phone", intent="bill"),
        ev(2, DAY, "web", intent="bill"),  # web is not assisted
        ev(3, 2 * DAY, "chat", intent="bill"),
        ev(4, w, "phone", intent="bill"),
        ev(5, w + 1, "email", intent="bill"),
        ev(6, 3 * w, "phone", intent="bill"),
    ]
    got = alerts(evs, "repeat_contact")
    assert [(a.event_ids, a.severity) for a in got] == [
        (("e001", "e003", "e004"), "medium"),  # exactly at the window: e001 still counts
        (("e003", "e004", "e005"), "medium"),  # e001 is now 1 ms outside
    ]


def test_stall_deadline_against_the_final_watermark() -> None:
    sla = DEFS.sla_ms("purchase", "checkout")
    x = ev(1, 0, journey_type="purchase", stage="checkout")
    (a,) = alerts([x], "stall", wm=T0 + sla)
    assert a.event_ids == ("e001",) and a.severity == "high" and a.occurred_at_ms == T0 + sla
    assert alerts([x], "stall", wm=T0 + sla - 1) == []


def test_progress_at_the_deadline_prevents_a_stall_one_ms_later_does_not() -> None:
    sla = DEFS.sla_ms("onboarding", "signup")
    x = ev(1, 0, journey_type="onboarding", stage="signup")
    on_time = ev(2, sla, journey_type="onboarding", stage="identity_verification")
    late = ev(2, sla + 1, journey_type="onboarding", stage="identity_verification")
    assert "e001" not in [a.trigger for a in alerts([x, on_time], "stall", wm=T0 + sla + 2 * DAY)]
    assert "e001" in [a.trigger for a in alerts([x, late], "stall", wm=T0 + sla + 2 * DAY)]


def test_terminal_stages_never_stall_and_other_journeys_do_not_rearm() -> None:
    done = [ev(1, 0, journey_type="purchase", stage="converted")]
    assert alerts(done, "stall") == []
    evs = [
        ev(1, 0, journey_type="purchase", stage="payment"),
        ev(2, MIN, journey_type="upgrade", stage="quote"),
    ]
    assert sorted(a.trigger for a in alerts(evs, "stall")) == ["e001", "e002"]


def test_dropoff_spike_needs_volume_and_a_rate_above_the_baseline() -> None:
    minute = (T0 // MIN + 100) * MIN
    cell = {"journey_type": "purchase", "stage": "payment"}
    burst = [
        OEvent(
            f"b{i}", minute + i * 1000, f"C{i}", "web", outcome="abandoned" if i % 2 else "success", **cell
        )
        for i in range(20)
    ]
    (spike,) = ORACLE.spikes(burst, [])
    assert (spike.volume, spike.dropoffs, spike.baseline) == (20, 10, 0.0)
    assert ORACLE.spikes(burst[:19], []) == []  # below dropoff_min_volume
    # A baseline of 30 % over the previous minutes (each below the volume floor): 50 % is not above 60 %.
    before = [
        OEvent(
            f"p{i}",
            minute - (1 + i % 5) * MIN,
            f"P{i}",
            "web",
            outcome="abandoned" if i < 6 else None,
            **cell,
        )
        for i in range(20)
    ]
    assert ORACLE.spikes(burst + before, []) == []


def test_repeat_contact_counts_contacts_at_exactly_the_same_time() -> None:
    evs = [
        ev(1, 0, "phone", intent="bill"),
        ev(2, HOUR, "chat", intent="bill"),
        ev(3, HOUR, "email", intent="bill"),
    ]
    got = alerts(evs, "repeat_contact")
    assert sorted(a.event_ids for a in got) == [("e001", "e002", "e003"), ("e001", "e003", "e002")]


@st.composite
def histories(draw: st.DrawFn) -> list[OEvent]:
    """Small random histories over a few channels, keys, departments and devices."""
    n = draw(st.integers(1, 12))
    out = []
    for i in range(n):
        journey = draw(st.sampled_from([None, "purchase", "technical_issue"]))
        stages = {"purchase": ["cart", "payment", "converted"], "technical_issue": ["report", "resolved"]}
        out.append(
            ev(
                i,
                draw(st.integers(0, 3 * DAY)),
                draw(st.sampled_from(["web", "phone", "chat", "ivr"])),
                journey_type=journey,
                stage=draw(st.sampled_from(stages[journey])) if journey else None,
                intent=draw(st.sampled_from([None, "bill", "fix"])),
                outcome=draw(st.sampled_from([None, "failure", "resolved", "abandoned"])),
                department=draw(st.sampled_from([None, "sales", "billing"])),
                device_key=draw(st.sampled_from([None, "d1", "d2"])),
                direction=draw(st.sampled_from(["inbound", "inbound", "outbound"])),
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_alerts_do_not_depend_on_arrival_order_or_redelivery(history: list[OEvent], rnd: Any) -> None:
    shuffled = list(history) + rnd.sample(history, k=min(3, len(history)))  # some redelivered
    rnd.shuffle(shuffled)
    key = lambda a: (a.type, a.event_ids)  # noqa: E731
    assert sorted(ORACLE.customer_alerts(history, FAR), key=key) == sorted(
        ORACLE.customer_alerts(shuffled, FAR), key=key
    )
