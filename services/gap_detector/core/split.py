"""An admin's split (unmerge) of a customer, as the detector follows it: the kept customer's buffered
entries, journey marks (with their pending stall timers) and open alerts that belong to the events now
of the new customer are taken out of the kept state, to be folded into the new customer's (state.fold,
as for a merge, the other way round). Pure: the adapter says which events are the new customer's (its
journey, as the stitcher moved it before publishing the split record) and saves both states.

Nothing is judged again: an alert moves as it was raised (no alert is invented or retracted by a split).
Taking again what was taken already takes nothing, so a split record read twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from services.gap_detector.core.state import CustomerState


def trigger_of(doc: Mapping[str, Any]) -> str | None:
    """The event an open alert was raised by: the last of its evidence's event ids (a stall's X, a switch's
    second event, a repeat's latest contact)."""
    evidence = doc.get("evidence")
    ids = evidence.get("event_ids") if isinstance(evidence, dict) else None
    return str(ids[-1]) if isinstance(ids, list) and ids else None


def take_split(
    kept: CustomerState, moved: set[str], open_docs: Mapping[str, bytes]
) -> tuple[CustomerState, dict[str, bytes]]:
    """Take out of ``kept`` what belongs to the events ``moved`` (the new customer's event ids): buffered
    entries, the marks of those events with their pending timers, and the open alerts (``open_docs``: the
    kept customer's open-alert hash, id -> JSON) they raised. Returns the part taken (a state to fold into
    the new customer's) and the documents of the alerts taken. ``kept`` is changed in place."""
    part = CustomerState(horizon=kept.horizon)  # what kept trimmed cannot be judged by the new one either
    if not moved:
        return part, {}
    part.buffer = [e for e in kept.buffer if e.id in moved]
    if part.buffer:
        kept.buffer = [e for e in kept.buffer if e.id not in moved]
        kept.ids = None  # rebuilt on next use
    for journey in [j for j, m in kept.marks.items() if m.id in moved]:
        part.marks[journey] = kept.marks.pop(journey)
        if journey in kept.timers:
            part.timers[journey] = kept.timers.pop(journey)
    docs: dict[str, bytes] = {}
    for aid in list(kept.open_alerts):
        doc = open_docs.get(aid)
        if doc is None or trigger_of(orjson.loads(doc)) not in moved:
            continue
        part.open_alerts[aid] = kept.open_alerts.pop(aid)
        docs[aid] = doc
    return part, docs
