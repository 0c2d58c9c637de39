"""One customer as the map sees it: the compact events and alerts its figures are derived from.

The map never increments a counter straight from an incoming record. It keeps each customer's events
(deduplicated by event id) and alerts (by alert id), and derives the customer's whole *contribution* to
the map from them (``contribution.py``); a batch writes the difference between the contribution after
and before. That is what makes the figures right whatever happens on the way in:

- redelivery: an event or alert already held changes nothing, so its difference is empty;
- late and out-of-order events: the contribution follows event time, not arrival, so a late event that
  slots in between two stages moves the transitions it changes;
- merges: the survivor takes the loser's events and alerts and the loser leaves a tombstone, so the loser's
  contribution is taken back and the survivor's grows by the union: a merged customer is counted once.
"""

from __future__ import annotations

import msgspec
from msgspec import Struct

from services.common.documents import AlertJourney, GapAlert
from services.common.records import StitchedEvent
from services.journey_map.core.bounds import ALERT_TYPES, Bounds

STATE_VERSION = 1
AGGREGATE = "dropoff:"  # owner prefix of aggregate alerts' pseudo-customers


class Ev(Struct, array_like=True, gc=False, frozen=True):
    """A stitched event's fields the map reads, dimensions already bounded (so a later change of the
    configured lists never changes what was counted before)."""

    t: int
    id: str
    channel: str
    journey: str | None = None  # bounded journey type, None when the event has no journey
    stage: str | None = None
    outcome: str | None = None
    inbound: bool = True
    onstage: bool = True
    department: str | None = None
    sentiment: float | None = None
    emotion: str | None = None
    nps: int | None = None
    persona: str | None = None

    @property
    def order(self) -> tuple[int, str]:
        return (self.t, self.id)


class Alert(Struct, array_like=True, gc=False, frozen=True):
    """A per-customer gap alert: where it points in the journey and whether it is still open."""

    id: str
    type: str
    t: int  # occurred_at (event time)
    journey: str
    stage: str
    trigger: str  # the trigger event id (its channel places the alert in a swimlane)
    open: bool = True
    channel: str | None = None  # the cell's channel, for an aggregate alert (dropoff_spike)


class CustomerState(Struct, gc=False):
    """``into``: the survivor this customer was merged into (a tombstone: what it holds counts there)."""

    v: int = STATE_VERSION
    events: list[Ev] = msgspec.field(default_factory=list)
    alerts: list[Alert] = msgspec.field(default_factory=list)
    into: str | None = None

    def event_ids(self) -> set[str]:
        return {e.id for e in self.events}


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(CustomerState)


def encode(state: CustomerState) -> bytes:
    return _ENCODER.encode(state)


def decode(raw: bytes | None) -> CustomerState:
    """The stored state; an absent (or unreadable: never written by this version) one is empty."""
    if not raw:
        return CustomerState()
    try:
        return _DECODER.decode(raw)
    except msgspec.DecodeError:
        return CustomerState()


def ev_from_record(ev: StitchedEvent, bounds: Bounds) -> Ev:
    journey = stage = None
    if ev.journey:
        journey = bounds.journey(ev.journey.type)
        stage = bounds.stage(journey, ev.journey.stage)
    sentiment = float(ev.sentiment) if isinstance(ev.sentiment, int | float) else None
    return Ev(
        ev.occurred_at_ms,
        ev.event_id,
        bounds.channel(ev.channel),
        journey,
        stage,
        ev.outcome or None,
        ev.direction == "inbound",
        ev.visibility == "onstage",
        bounds.department(ev.department or None),
        sentiment,
        bounds.emotion(ev.emotion or None),
        ev.nps if isinstance(ev.nps, int) else None,
        bounds.persona(ev.persona) if isinstance(ev.persona, str) else None,
    )


def alert_from_doc(doc: GapAlert, bounds: Bounds, t_ms: int) -> Alert | None:
    """The map's view of a gap_alert.v1 (None: not an alert it can place). ``t_ms``: occurred_at, epoch ms."""
    if doc.type not in ALERT_TYPES:
        return None
    jr = doc.journey
    journey = bounds.journey(jr.type if isinstance(jr, AlertJourney) else None)
    stage = bounds.stage(
        journey, jr.stage if isinstance(jr, AlertJourney) and isinstance(jr.stage, str) else None
    )
    ids, channel_name = doc.evidence.event_ids, doc.evidence.channel
    trigger = ids[-1] if isinstance(ids, list) and ids else ""
    channel = bounds.channel(channel_name) if isinstance(channel_name, str) else None
    return Alert(doc.alert_id, doc.type, t_ms, journey, stage, trigger, doc.status != "closed", channel)


def alert_owner(doc: GapAlert, alert: Alert) -> str:
    """Whose state holds an alert: its customer, or for an aggregate alert (dropoff_spike) a pseudo-customer
    per drop-off cell (no persona, never listed as a customer to look up)."""
    cid = doc.customer_id
    if isinstance(cid, str) and cid:
        return cid
    return f"{AGGREGATE}{alert.journey}:{alert.stage}:{alert.channel or 'other'}"


def add_event(state: CustomerState, ev: Ev) -> bool:
    """Whether the event is new to this customer (redelivered: False, nothing changes)."""
    if any(e.id == ev.id for e in state.events):
        return False
    state.events.append(ev)
    return True


def add_alert(state: CustomerState, alert: Alert) -> bool:
    """Keep the alert; a retraction (closed) closes it for good, a repeated open changes nothing."""
    for i, known in enumerate(state.alerts):
        if known.id == alert.id:
            if known.open and not alert.open:
                state.alerts[i] = alert
                return True
            return False
    state.alerts.append(alert)
    return True


def fold(survivor: CustomerState, loser: CustomerState) -> bool:
    """Move the loser's events and alerts into the survivor (deduplicated). Whether anything moved."""
    changed = False
    for ev in loser.events:
        changed |= add_event(survivor, ev)
    for alert in loser.alerts:
        changed |= add_alert(survivor, alert)
    return changed


def tombstone(into: str, former: CustomerState | None = None) -> CustomerState:
    """A customer merged into ``into``. It keeps a copy of what it held (counted only under the survivor),
    so a merge record redelivered after a crash between the two customers' writes folds it in again."""
    if former is None:
        return CustomerState(into=into)
    return CustomerState(events=list(former.events), alerts=list(former.alerts), into=into)
