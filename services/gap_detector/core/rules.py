"""The event-triggered rules of docs/RULES.md, as pure functions over one customer's buffer.

``buffer`` is sorted by event time (ties by event_id) and contains the trigger E itself; each rule
looks only at events before E (its predecessor) or in E's window, so a late arrival is judged by
event time, not by arrival order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from services.gap_detector.core.alerts import customer_alert, title_channel_switch
from services.gap_detector.core.definitions import Definitions
from services.gap_detector.core.model import Entry

RESOLVED_OUTCOMES = frozenset({"success", "resolved"})
MAX_EVIDENCE = 50

Alert = dict[str, Any]


def predecessor(buffer: Sequence[Entry], idx: int, accept: Callable[[Entry], bool]) -> Entry | None:
    """The latest entry before ``buffer[idx]`` passing ``accept``."""
    for j in range(idx - 1, -1, -1):
        if accept(buffer[j]):
            return buffer[j]
    return None


def unresolved(e: Entry, defs: Definitions) -> bool:
    if e.outcome in RESOLVED_OUTCOMES:
        return False
    return not (e.journey and e.stage and defs.is_terminal(e.journey, e.stage))


def channel_switch(cid: str, buffer: Sequence[Entry], idx: int, defs: Definitions, now: int) -> Alert | None:
    e = buffer[idx]
    k = e.key
    if not e.is_contact or k is None:
        return None
    # The same as predecessor(buffer, idx, lambda x: x.is_contact and x.key == k), written out: this
    # runs for every contact, and the lambda and property calls cost more than the comparisons.
    p = None
    for j in range(idx - 1, -1, -1):
        x = buffer[j]
        if x.inbound and x.onstage and (x.journey or x.intent) == k:
            p = x
            break
    window = defs.thresholds(e.journey).channel_switch_window_ms
    if p is None or p.channel == e.channel or e.t - p.t > window or not unresolved(p, defs):
        return None
    failed = p.channel in defs.self_service and e.channel in defs.assisted
    evidence = {
        "event_ids": [p.id, e.id],
        "channels": [p.channel, e.channel],
        "window_seconds": window / 1000,
    }
    return customer_alert(
        "channel_switch",
        "high" if failed else "medium",
        cid,
        e,
        evidence,
        title_channel_switch(p, e, failed),
        now,
    )


def device_switch(cid: str, buffer: Sequence[Entry], idx: int, defs: Definitions, now: int) -> Alert | None:
    e = buffer[idx]
    if e.device_key is None:
        return None
    p = None
    for j in range(idx - 1, -1, -1):  # predecessor(..., lambda x: x.device_key is not None), written out
        if buffer[j].device_key is not None:
            p = buffer[j]
            break
    window = defs.thresholds(e.journey).device_switch_window_ms
    if p is None or p.device_key == e.device_key or e.t - p.t > window:
        return None
    devices = [p.device_type or "unknown", e.device_type or "unknown"]
    evidence = {"event_ids": [p.id, e.id], "devices": devices, "window_seconds": window / 1000}
    title = f"Moved from {devices[0]} to {devices[1]} device within {(e.t - p.t) // 60_000} min"
    return customer_alert("device_switch", "low", cid, e, evidence, title, now)


def department_handoff(
    cid: str, buffer: Sequence[Entry], idx: int, defs: Definitions, now: int
) -> Alert | None:
    e = buffer[idx]
    k = e.key
    if e.department is None or k is None:
        return None
    p = predecessor(buffer, idx, lambda x: x.department is not None and x.key == k)
    window = defs.thresholds(e.journey).handoff_window_ms
    if p is None or p.department == e.department or e.t - p.t > window:
        return None
    # The chain: distinct departments among E and its earlier department events on K within W.
    chain = {x.department for x in buffer[: idx + 1] if x.department and x.key == k and e.t - x.t <= window}
    severity = "high" if len(chain) >= 3 else "medium"
    evidence = {
        "event_ids": [p.id, e.id],
        "departments": [p.department, e.department],
        "window_seconds": window / 1000,
    }
    title = f"Handed off from {p.department} to {e.department} on {k}"
    return customer_alert("department_handoff", severity, cid, e, evidence, title, now)


def repeat_contact(cid: str, buffer: Sequence[Entry], idx: int, defs: Definitions, now: int) -> Alert | None:
    e = buffer[idx]
    if not (e.is_contact and e.intent and e.channel in defs.assisted):
        return None
    th = defs.thresholds(e.journey)
    lo = e.t - th.repeat_contact_window_ms
    # t <= E.t includes other contacts at exactly E's time (RULES.md); E itself goes last.
    group = [
        x
        for x in buffer
        if x is not e
        and lo <= x.t <= e.t
        and x.is_contact
        and x.intent == e.intent
        and x.channel in defs.assisted
    ]
    group.append(e)
    count = len(group)
    if count < th.repeat_contact_count:
        return None
    severity = "medium" if count == th.repeat_contact_count else "high"
    evidence = {
        "event_ids": [x.id for x in group][-MAX_EVIDENCE:],
        "count": count,
        "window_seconds": th.repeat_contact_window_ms / 1000,
    }
    title = f"Contact #{count} about {e.intent} within {th.repeat_contact_window_ms // 86_400_000 or 1} d"
    return customer_alert("repeat_contact", severity, cid, e, evidence, title, now)


EVENT_RULES: tuple[tuple[str, Callable[[str, Sequence[Entry], int, Definitions, int], Alert | None]], ...] = (
    ("channel_switch", channel_switch),
    ("device_switch", device_switch),
    ("department_handoff", department_handoff),
    ("repeat_contact", repeat_contact),
)


def evaluate(cid: str, buffer: Sequence[Entry], idx: int, defs: Definitions, now: int) -> list[Alert]:
    """What ``buffer[idx]`` raises now, against what it raised before (``alerted`` holds
    '<type>:<severity>'): new alerts, changed severities re-published with the same id, and alerts a late
    arrival made untrue re-published with status ``closed`` (a retraction)."""
    e = buffer[idx]
    before = dict(a.split(":", 1) for a in e.alerted) if e.alerted else {}
    raised: list[str] = []
    out = []
    for kind, rule in EVENT_RULES:
        alert = rule(cid, buffer, idx, defs, now)
        if alert is not None:
            severity = alert["severity"]
            raised.append(f"{kind}:{severity}")
            if before.get(kind) != severity:
                out.append(alert)
        elif kind in before:
            out.append(retraction(cid, e, kind, now))
    if raised or e.alerted:
        alerted = tuple(raised)
        if alerted != e.alerted:  # unchanged keeps its identity: the store reuses the entry's encoding
            e.alerted = alerted
    return out


def retraction(cid: str, trigger: Entry, kind: str, now: int) -> Alert:
    """The closed form of an alert a late event made untrue (its predecessor changed)."""
    title = f"Retracted: an earlier event arrived late and {trigger.id} is no {kind} after all"
    doc = customer_alert(kind, "low", cid, trigger, {"event_ids": [trigger.id]}, title, now)
    doc["status"] = "closed"
    return doc
