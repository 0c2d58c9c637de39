"""Agents' handling of an alert (services.api.core.handling): open -> acknowledged -> resolved, forward
only, a repeat changes nothing, the note is short text without contact details, and the API's copy of an
alert carries the handling (resolved: closed) and still satisfies gap_alert.v1."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.api.core.handling import (
    MAX_HISTORY,
    BadNote,
    Refused,
    clean_note,
    is_open,
    overlay,
    state_of,
    transition,
)
from services.common.contracts import GAP_ALERT, first_error
from services.common.timeutil import format_ms

pytestmark = pytest.mark.unit
T0 = 1_793_000_000_000


def alert(status: str = "open") -> dict[str, Any]:
    return {
        "schema_version": "1.2",
        "alert_id": "a_0123456789abcdef",
        "type": "stall",
        "severity": "high",
        "status": status,
        "customer_id": "c_0123456789abcdef",
        "detected_at": "2026-11-02T08:00:00Z",
        "occurred_at": "2026-11-02T08:00:00Z",
        "evidence": {"stage": "payment"},
    }


def test_acknowledge_then_resolve_keeps_both_steps() -> None:
    ack = transition(None, "acknowledge", "agent-1", T0, "calling back")
    assert ack.changed and ack.handling["state"] == "acknowledged" and ack.handling["by"] == "agent-1"
    done = transition(ack.handling, "resolve", "agent-2", T0 + 60_000, "fixed")
    assert done.changed and done.handling["state"] == "resolved" and done.handling["note"] == "fixed"
    assert [(s["state"], s["by"], s["note"]) for s in done.handling["history"]] == [
        ("acknowledged", "agent-1", "calling back"),
        ("resolved", "agent-2", "fixed"),
    ]
    assert done.handling["at"] == format_ms(T0 + 60_000)


def test_a_repeat_changes_nothing_and_keeps_the_first_author() -> None:
    ack = transition(None, "acknowledge", "agent-1", T0, "mine").handling
    again = transition(ack, "acknowledge", "agent-2", T0 + 5, "no, mine")
    assert not again.changed and again.handling == ack
    done = transition(ack, "resolve", "agent-1", T0 + 9, "").handling
    assert transition(done, "resolve", "agent-3", T0 + 10, "x").handling == done


def test_resolve_without_acknowledging_first() -> None:
    done = transition(None, "resolve", "agent-1", T0, "dup of a_1")
    assert done.changed and [s["state"] for s in done.handling["history"]] == ["resolved"]


def test_going_back_is_refused() -> None:
    done = transition(None, "resolve", "agent-1", T0, "").handling
    with pytest.raises(Refused, match="resolved already"):
        transition(done, "acknowledge", "agent-2", T0 + 1, "")


def test_an_alert_the_detector_closed_cannot_be_taken() -> None:
    with pytest.raises(Refused, match="detector closed"):
        transition(None, "acknowledge", "agent-1", T0, "", alert_status="closed")
    # ...but one an agent resolved (the API's copy says closed) answers the repeat as unchanged.
    done = transition(None, "resolve", "agent-1", T0, "").handling
    assert not transition(done, "resolve", "agent-1", T0, "", alert_status="closed").changed


def test_unknown_action() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        transition(None, "delete", "agent-1", T0, "")


@given(st.lists(st.sampled_from(["acknowledge", "resolve"]), max_size=12))
def test_any_sequence_only_moves_forward_and_history_is_bounded(actions: list[str]) -> None:
    handling = None
    states = ["open"]
    for n, action in enumerate(actions):
        try:
            handling = transition(handling, action, "a", T0 + n, "").handling
        except Refused:
            assert state_of(handling) == "resolved" and action == "acknowledge"
        states.append(state_of(handling))
    order = ["open", "acknowledged", "resolved"]
    assert [order.index(s) for s in states] == sorted(order.index(s) for s in states)
    assert handling is None or 1 <= len(handling["history"]) <= min(2, MAX_HISTORY)


def test_note_is_short_text_with_contact_details_redacted() -> None:
    assert clean_note(None) == ""
    assert clean_note("  called back\x00 \x07 ") == "called back"
    assert clean_note("call +44 7700 900958 or bob@example.com") == "call [redacted] or [redacted]"
    assert clean_note("order 12345, 2 items") == "order 12345, 2 items"
    with pytest.raises(BadNote, match="string"):
        clean_note(42)
    with pytest.raises(BadNote, match="longer than 500"):
        clean_note("x" * 501)


def test_overlay_keeps_acknowledged_open_and_closes_resolved() -> None:
    assert overlay(alert(), None) == alert()
    ack = transition(None, "acknowledge", "agent-1", T0, "on it").handling
    shown = overlay(alert(), ack)
    assert shown["handling"] == ack and shown["status"] == "open" and is_open(shown)
    done = overlay(alert(), transition(ack, "resolve", "agent-1", T0 + 1, "done").handling)
    assert done["status"] == "closed" and not is_open(done) and done["schema_version"] == "1.3"
    for doc in (shown, done):
        assert first_error(GAP_ALERT, doc) is None
    assert alert()["status"] == "open"  # the detector's document is not changed in place


def test_acknowledging_and_resolving_are_agent_actions_and_nothing_else_that_changes_is() -> None:
    from services.api.auth import needed_role

    for action in ("acknowledge", "resolve"):
        assert needed_role("POST", f"/api/v1/alerts/{{alert_id}}/{action}") == "agent"
        assert needed_role("DELETE", f"/api/v1/alerts/{{alert_id}}/{action}") == "admin"
    assert needed_role("POST", "/api/v1/alerts") == "admin"
    assert needed_role("DELETE", "/api/v1/customers/{customer_id}") == "admin"
    assert needed_role("GET", "/api/v1/journeys/{customer_id}/events") == "agent"
