"""Agents' handling of an alert: acknowledge it, then resolve it, each with a note. Pure, no I/O.

The detector owns an alert's document (type, severity, evidence, its own ``status``); an agent's handling is
kept beside it (``Keys.alert_handling``) and laid over every copy the API serves or publishes: an
acknowledged alert stays open and shows who took it; a resolved one is closed. States only move forward
(open -> acknowledged -> resolved, or open -> resolved); asking for the state an alert is already in changes
nothing (a retried request, a second agent), asking to go back is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.common.alert_handling import SCHEMA_VERSION, overlay
from services.common.timeutil import format_ms
from services.stitcher.core.scrub import scrub_text

ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved"}
ORDER = ("open", "acknowledged", "resolved")
MAX_NOTE_CHARS = 500
MAX_HISTORY = 10  # steps kept: an alert is acknowledged and resolved once, a few notes at most
__all__ = [
    "SCHEMA_VERSION",
    "BadNote",
    "Change",
    "Refused",
    "clean_note",
    "is_open",
    "overlay",
    "state_of",
    "transition",
]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class Refused(ValueError):
    """The alert cannot take that step (resolved already, or closed by the detector): HTTP 409."""


class BadNote(ValueError):
    """The note is not a short text: HTTP 400."""


@dataclass(frozen=True, slots=True)
class Change:
    handling: dict[str, Any]
    changed: bool


def clean_note(raw: Any) -> str:
    """The note as stored: text of at most MAX_NOTE_CHARS, control characters dropped, and e-mail
    addresses and phone-like digit runs redacted (an agent typing the caller's number must not put it in
    Redis or on gap-alerts)."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise BadNote("note must be a string")
    note = _CONTROL.sub("", raw).strip()
    if len(note) > MAX_NOTE_CHARS:
        raise BadNote(f"note is longer than {MAX_NOTE_CHARS} characters")
    return scrub_text(note)


def state_of(handling: dict[str, Any] | None) -> str:
    return str(handling["state"]) if handling else "open"


def transition(
    current: dict[str, Any] | None, action: str, by: str, at_ms: int, note: str, alert_status: str = "open"
) -> Change:
    """The handling after ``action`` ('acknowledge' or 'resolve') by caller ``by`` at ``at_ms``."""
    target = ACTIONS.get(action)
    if target is None:
        raise ValueError(f"unknown action {action!r}")
    state = state_of(current)
    if current is None and alert_status == "closed":
        raise Refused("the detector closed this alert already (retracted, or the journey moved on)")
    if state == target:
        assert current is not None
        return Change(current, False)
    if ORDER.index(target) < ORDER.index(state):
        raise Refused(f"the alert is {state} already")
    step = {"state": target, "by": by, "at": format_ms(at_ms), "note": note}
    history = [*(current or {}).get("history", []), step][-MAX_HISTORY:]
    return Change({**step, "history": history}, True)


def is_open(alert: dict[str, Any]) -> bool:
    return alert.get("status", "open") != "closed"
