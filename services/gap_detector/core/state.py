"""One customer's detector state: the bounded event buffer, the latest event per journey type (for
stalls), the pending stall timers and the open alerts, with the Redis hash encoding and the fold of a
merged-away customer into its survivor.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
from msgspec import Struct

from services.common.timeutil import parse_rfc3339_ms
from services.gap_detector.core.model import Entry

STATE_VERSION = b"2"  # 2: open-alert summaries in field 'o'; 1 read them from the open-alert documents


class Mark(Struct, array_like=True, gc=False):
    """The latest event X of one journey type, and its stall deadline (None: terminal stage)."""

    t: int
    id: str
    stage: str
    channel: str
    deadline: int | None
    sla_ms: int
    # The stall alert X raised, once it fired, and the customer it was raised for: they move with the mark
    # when customers merge, so a late successor retracts it under the id and key (customer, so partition:
    # a retraction must follow its alert) it was published with, a loser's after a merge.
    fired: str | None = None
    fired_for: str | None = None

    @property
    def order(self) -> tuple[int, str]:
        return (self.t, self.id)

    def to_json(self) -> list[Any]:
        return [self.t, self.id, self.stage, self.channel, self.deadline, self.sla_ms]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Mark:
        return cls(raw[0], raw[1], raw[2], raw[3], raw[4], raw[5])


class OpenAlert(Struct, array_like=True, frozen=True, gc=False):
    """What closing needs to know about an open alert (the full JSON stays in the open-alert hash)."""

    type: str
    journey: str | None
    detected_ms: int


@dataclass(slots=True)
class CustomerState:
    buffer: list[Entry] = field(default_factory=list)
    marks: dict[str, Mark] = field(default_factory=dict)
    timers: dict[str, int] = field(default_factory=dict)  # journey type -> pending deadline (from the ZSET)
    open_alerts: dict[str, OpenAlert] = field(default_factory=dict)
    horizon: int = -1  # newest event time trimmed away: older arrivals cannot be judged any more
    superseded: dict[str, int] = field(default_factory=dict)  # pending superseded-stall timers (logic.py)
    # The buffered event ids, built on first use and kept by insert/trim: a state the worker keeps between
    # batches answers "seen before?" without walking its whole buffer for every event.
    ids: set[str] | None = field(default=None, repr=False, compare=False)

    def find(self, event_id: str) -> bool:
        """Whether the event is known: buffered, or the mark of a journey (which may outlive the buffer)."""
        if self.ids is None:
            self.ids = {e.id for e in self.buffer}
        if event_id in self.ids:
            return True
        for m in self.marks.values():  # noqa: SIM110 - a mark or two: any() and its generator cost more
            if m.id == event_id:
                return True
        return False

    def insert(self, entry: Entry) -> int:
        """Place ``entry`` by event time; returns its index."""
        if self.ids is not None:
            self.ids.add(entry.id)
        buf, order = self.buffer, entry.order
        if not buf or buf[-1].order < order:  # the common case: events mostly arrive in order
            buf.append(entry)
            return len(buf) - 1
        idx = bisect.bisect_left(buf, order, key=_order)
        buf.insert(idx, entry)
        return idx

    def trim(self, max_events: int, max_age_ms: int) -> None:
        """Bound the buffer: at most ``max_events``, none older than the newest minus ``max_age_ms``."""
        if not self.buffer:
            return
        newest = self.buffer[-1].t
        start = max(0, len(self.buffer) - max_events)
        while start < len(self.buffer) and self.buffer[start].t < newest - max_age_ms:
            start += 1
        if start:
            self.horizon = max(self.horizon, self.buffer[start - 1].t)
            if self.ids is not None:
                self.ids.difference_update(e.id for e in self.buffer[:start])
            del self.buffer[:start]


def _order(e: Entry) -> tuple[int, str]:
    return e.order


_encode = msgspec.json.Encoder().encode
# strict=False: version 1 buffers stored the two booleans of an entry as 0/1.
_BUFFER = msgspec.json.Decoder(list[Entry], strict=False)
_MARK = msgspec.json.Decoder(Mark)
_OPEN = msgspec.json.Decoder(dict[str, OpenAlert])
_SUPERSEDED = _TIMERS = msgspec.json.Decoder(dict[str, int])


def encode_state(state: CustomerState, buf: bytes | None = None) -> dict[bytes, bytes]:
    """The hash fields of Keys.detector_state: ``v``, ``buf``, ``h``, ``s``, ``o``, ``t`` (the pending stall
    timers: the truth, of which the timer wheel is an index) and one ``j:<journey>`` per mark. ``buf``: the
    buffer already encoded (``encode_buffer``)."""
    fields = {
        b"v": STATE_VERSION,
        b"buf": _encode(state.buffer) if buf is None else buf,
        b"h": b"%d" % state.horizon,
        b"s": _encode(state.superseded),
        b"o": _encode(state.open_alerts),
        b"t": _encode(state.timers),
    }
    for journey, mark in state.marks.items():
        fields[b"j:" + journey.encode()] = _encode(mark)
    return fields


@dataclass(slots=True)
class EncodedBuffer:
    """A buffer's JSON (``[e0,e1,...]``) with what it was made of: the entries, their ``alerted`` tuples
    and where each entry's bytes end."""

    entries: list[Entry]
    alerted: list[tuple[str, ...]]
    ends: list[int]
    data: bytes


def encode_buffer(buffer: list[Entry], prev: EncodedBuffer | None = None) -> EncodedBuffer:
    """The buffer's JSON, reusing the bytes of ``prev`` for the run of entries that are still the same
    objects with the same ``alerted`` (an entry changes in nothing else): typically all but the events
    just added, so a batch encodes what it added instead of the customer's whole history. Same bytes as
    encoding the buffer at once."""
    keep = start = k = 0
    if prev is not None and buffer:
        old, first = prev.entries, buffer[0]
        k = next((i for i, e in enumerate(old) if e is first), -1)  # identity only: no entry is read
        if k >= 0:
            limit = min(len(buffer), len(old) - k)
            same, alerted = old[k : k + limit], prev.alerted[k : k + limit]
            while keep < limit and buffer[keep] is same[keep] and buffer[keep].alerted is alerted[keep]:
                keep += 1
            start = 1 if k == 0 else prev.ends[k - 1] + 1
    if keep and prev is not None:
        base = start - 1  # the kept run moves to just after '['
        ends = [end - base for end in prev.ends[k : k + keep]]
        parts = [prev.data[start : prev.ends[k + keep - 1]]]
    else:
        ends, parts = [], []
    pos = ends[-1] if ends else 0
    for e in buffer[keep:]:
        encoded = _encode(e)
        pos += len(encoded) + 1  # after '[' or ','
        ends.append(pos)
        parts.append(encoded)
    return EncodedBuffer(list(buffer), [e.alerted for e in buffer], ends, b"[" + b",".join(parts) + b"]")


def decode_state(
    fields: dict[bytes, bytes], timers: dict[str, int] | None, open_alerts: dict[bytes, bytes]
) -> CustomerState:
    """The state from its hash fields; ``open_alerts`` (the open-alert hash) is read only for a version 1
    state, which has no ``o`` field yet. Its pending timers are field ``t``; a state written before they
    were kept there takes ``timers``, else every mark with a deadline that has not fired."""
    raw_timers = fields.get(b"t")
    state = CustomerState(timers=_TIMERS.decode(raw_timers) if raw_timers is not None else dict(timers or {}))
    horizon = fields.get(b"h")
    if horizon is not None:
        state.horizon = int(horizon)
    superseded = fields.get(b"s")
    if superseded is not None:
        state.superseded = _SUPERSEDED.decode(superseded)
    raw_buf = fields.get(b"buf")
    if raw_buf:
        state.buffer = _BUFFER.decode(raw_buf)
    for name, value in fields.items():
        if name[:2] == b"j:":
            state.marks[name[2:].decode()] = _MARK.decode(value)
    if raw_timers is None and timers is None:
        state.timers = {
            j: m.deadline for j, m in state.marks.items() if m.deadline is not None and not m.fired
        }
    summaries = fields.get(b"o")
    if summaries is not None:
        state.open_alerts = _OPEN.decode(summaries)
    else:
        for aid, doc in open_alerts.items():
            state.open_alerts[aid.decode()] = open_alert_meta(orjson.loads(doc))
    return state


def summary(alert: dict[str, Any], detected_ms: int) -> OpenAlert:
    """The summary of an alert just raised at ``detected_ms`` (its detected_at, without parsing it)."""
    journey = alert.get("journey")
    return OpenAlert(alert["type"], journey["type"] if journey else None, detected_ms)


def open_alert_meta(doc: dict[str, Any]) -> OpenAlert:
    journey = doc["journey"].get("type") if isinstance(doc.get("journey"), dict) else None
    try:
        detected = parse_rfc3339_ms(str(doc.get("detected_at", "")))
    except ValueError:
        detected = 0
    return OpenAlert(str(doc.get("type", "")), journey, detected)


@dataclass(slots=True)
class Fold:
    """What folding a loser changed: timers to move (member journey types) and alerts to move."""

    moved_timers: dict[str, int] = field(default_factory=dict)
    first_new_t: int | None = None
    # Pending marks (their stall timer not fired) that lost to the other side's later mark of the journey:
    # no timer stands for them any more, so the logic judges them as superseded.
    outpaced: list[tuple[str, Mark]] = field(default_factory=list)


def fold(survivor: CustomerState, loser: CustomerState) -> Fold:
    """Fold a merged-away customer's state into the survivor. Idempotent: folding the same events
    again changes nothing. A loser's pending timer moves only when its mark wins."""
    out = Fold()
    survivor.horizon = max(survivor.horizon, loser.horizon)
    known = {e.id: e for e in survivor.buffer}
    for entry in loser.buffer:
        mine = known.get(entry.id)
        if mine is not None:
            mine.alerted = tuple(sorted(set(mine.alerted) | set(entry.alerted)))
            continue
        survivor.insert(entry)
        out.first_new_t = entry.t if out.first_new_t is None else min(out.first_new_t, entry.t)
    for journey, mark in loser.marks.items():
        current = survivor.marks.get(journey)
        if current is not None and current.order >= mark.order:
            if current.order > mark.order and _pending(loser, journey, mark):
                out.outpaced.append((journey, mark))
            continue
        if current is not None and _pending(survivor, journey, current):
            out.outpaced.append((journey, current))
        survivor.marks[journey] = mark
        if journey in loser.timers:
            survivor.timers[journey] = loser.timers[journey]
            out.moved_timers[journey] = loser.timers[journey]
        else:
            # The loser's stall already fired (or its stage was terminal): nothing pending.
            survivor.timers.pop(journey, None)
    for aid, meta in loser.open_alerts.items():
        survivor.open_alerts.setdefault(aid, meta)
    return out


def _pending(state: CustomerState, journey: str, mark: Mark) -> bool:
    """Whether ``mark``'s own stall timer is still to fire."""
    return mark.deadline is not None and state.timers.get(journey) == mark.deadline
