"""Per-customer stateful logic in the style of bytewax's StatefulLogic: ``on_item`` for an event,
``on_notify`` for a due stall timer. No I/O: the adapter loads the state, calls these and persists
what they return (alerts, closed alert ids, timer deadlines in ``state.timers``, drop-off counts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from services.gap_detector.core import rules
from services.gap_detector.core.alerts import alert_id, stall_alert
from services.gap_detector.core.definitions import Definitions
from services.gap_detector.core.dropoff import cell_key, minute_of
from services.gap_detector.core.model import Entry
from services.gap_detector.core.state import CustomerState, Fold, Mark, fold, summary


@dataclass(slots=True)
class Step:
    """What one call produced. ``cells`` are drop-off count increments: (cell key, minute) -> [volume,
    drop-offs]."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    # Superseded-stall timer member suffix -> what to do with it on the timer wheel (the last op wins).
    extra_timers: dict[str, TimerOp] = field(default_factory=dict)
    cells: dict[tuple[str, int], list[int]] = field(default_factory=dict)

    def count(self, key: str, minute: int, volume: int, dropoffs: int) -> None:
        acc = self.cells.setdefault((key, minute), [0, 0])
        acc[0] += volume
        acc[1] += dropoffs


@dataclass(frozen=True, slots=True)
class ArmTimer:
    """Put a superseded-stall timer on the timer wheel, due at ``deadline`` (event-time ms)."""

    deadline: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Take a superseded-stall timer off the timer wheel: the stall it stood for will not happen."""


CANCEL = CancelTimer()
TimerOp = ArmTimer | CancelTimer


@dataclass(frozen=True, slots=True)
class SupersededStall:
    """The timer of an X superseded before its own timer fired (see ``DetectorLogic._progress``): its
    member suffix holds the journey and X's mark, so firing it needs no state. The suffix is a JSON array,
    the one thing that tells it from a journey type (which never starts with '['); only this class reads
    or writes that form."""

    journey: str
    mark: Mark

    def suffix(self) -> str:
        return orjson.dumps([self.journey, *self.mark.to_json()]).decode()

    @staticmethod
    def parse(suffix: str) -> SupersededStall | None:
        """The superseded stall a timer member suffix names, None for a journey's own timer."""
        if not suffix.startswith("["):
            return None
        raw = orjson.loads(suffix)
        return SupersededStall(raw[0], Mark.from_json(raw[1:]))


def persona_of(state: CustomerState) -> str | None:
    """The customer's persona for an alert without a trigger event of its own (a stall is raised from a
    mark, which keeps no persona): that of their latest buffered event naming one, as the map takes it."""
    for entry in reversed(state.buffer):
        if entry.persona:
            return entry.persona
    return None


class DetectorLogic:
    def __init__(self, defs: Definitions, max_buffer_events: int = 200, lateness_ms: int = 300_000) -> None:
        self.defs = defs
        self.max_buffer_events = max_buffer_events
        every = [defs.defaults, *(j.thresholds for j in defs.journeys.values())]
        # The buffer must reach back as far as the widest window any rule looks at, measured from an
        # event that may arrive up to the lateness after the newest one.
        self.max_age_ms = lateness_ms + max(
            max(
                t.channel_switch_window_ms,
                t.device_switch_window_ms,
                t.handoff_window_ms,
                t.repeat_contact_window_ms,
            )
            for t in every
        )

    # -- events ----------------------------------------------------------------------------------
    def on_item(
        self, cid: str, state: CustomerState, entry: Entry, now_ms: int, wm: int | None = None
    ) -> Step:
        """Apply one event; ``wm`` is the watermark this batch runs under (None: not known yet)."""
        step = Step()
        if state.find(entry.id):
            return step  # redelivered: everything it caused is already stored
        if entry.t <= state.horizon:
            return step  # older than the buffer reaches (beyond the lateness): cannot be judged fairly
        if wm is not None and state.superseded:
            # Superseded timers already due are fired or being fired; no legal late event can undo them.
            state.superseded = {k: d for k, d in state.superseded.items() if d > wm}
        idx = state.insert(entry)
        while idx > 0 and state.buffer[idx - 1].t == entry.t:
            idx -= 1  # repeat_contact counts contacts at exactly E's time: same-time entries change too
        self._evaluate_from(cid, state, idx, now_ms, step)
        if entry.journey and entry.stage:
            self._progress(cid, state, entry, now_ms, wm, step)
            step.count(
                cell_key(entry.journey, entry.stage, entry.channel),
                minute_of(entry.t),
                1,
                int(entry.outcome == "abandoned"),
            )
        state.trim(self.max_buffer_events, self.max_age_ms)
        return step

    def _evaluate_from(self, cid: str, state: CustomerState, idx: int, now_ms: int, step: Step) -> None:
        """Evaluate the entry at ``idx`` and every later one (a late arrival can be their new predecessor
        or repeat-contact member): new alerts, severity updates and retractions (status closed), each
        under the trigger's deterministic alert id; entries remember what they raised."""
        for i in range(idx, len(state.buffer)):
            for alert in rules.evaluate(cid, state.buffer, i, self.defs, now_ms):
                step.alerts.append(alert)
                if alert["status"] == "open":
                    state.open_alerts[alert["alert_id"]] = summary(alert, now_ms)
                elif state.open_alerts.pop(alert["alert_id"], None) is not None:
                    step.closed.append(alert["alert_id"])

    def _progress(
        self, cid: str, state: CustomerState, entry: Entry, now_ms: int, wm: int | None, step: Step
    ) -> None:
        journey, stage = entry.journey, entry.stage
        assert journey is not None and stage is not None
        mark = state.marks.get(journey)
        if mark is not None and entry.order <= mark.order:
            # A late event older than X does not move X's stall clock, but it is progress for a
            # superseded X' it follows within X''s SLA: that X' does not stall after all.
            for suffix in list(state.superseded):
                sup = SupersededStall.parse(suffix)
                assert sup is not None  # state.superseded holds only their suffixes
                old = sup.mark
                if (
                    sup.journey == journey
                    and old.deadline is not None
                    and old.order < entry.order
                    and entry.t <= old.deadline
                ):
                    del state.superseded[suffix]
                    step.extra_timers[suffix] = CANCEL
            # And it is an X of its own, whose successor is already here: events of one customer reach
            # different workers when customers merge (the loser's keep its partition), so a J-event can
            # arrive after a later one, by more than its SLA. Judged now, as a superseded X.
            self._judge_superseded(cid, state, journey, self._mark_of(entry), wm, now_ms, step)
            return
        if (
            mark is not None
            and mark.deadline is not None
            and state.timers.get(journey) == mark.deadline
            and entry.t > mark.deadline
        ):
            # X is superseded by an event past its deadline before its timer fired (a big replay batch,
            # or the next event within the lateness): no J-event came in (X.t, deadline], so X stalls
            # once the watermark reaches the deadline - now, or by its own timer that needs no state.
            self._supersede(cid, state, journey, mark, wm, now_ms, step)
        if mark is not None and mark.deadline is not None and entry.t <= mark.deadline:
            self._retract_stall(cid, state, journey, mark, now_ms, step)
        new = state.marks[journey] = self._mark_of(entry)
        terminal = new.deadline is None
        if new.deadline is None:
            state.timers.pop(journey, None)
        else:
            state.timers[journey] = new.deadline
        # Progress closes the journey's open stall alerts; a terminal stage closes all its alerts.
        if state.open_alerts:
            self._close(state, step, lambda m: m.journey == journey and (terminal or m.type == "stall"))

    def _judge_superseded(
        self, cid: str, state: CustomerState, journey: str, x: Mark, wm: int | None, now_ms: int, step: Step
    ) -> None:
        """X, a J-event that is not J's latest (a late arrival, or a pending mark that lost a fold), stalls
        when the next J-event after it came past its deadline: at once if the watermark is there, else by a
        superseded-stall timer. Judged only within the buffer's reach, and once."""
        if x.deadline is None or x.t <= state.horizon:
            return
        current = state.marks.get(journey)
        if current is None or current.order <= x.order:
            return  # X is the latest: its own timer decides
        nxt = current.t
        for e in state.buffer:  # the first J-event after X (the latest mark when none is buffered)
            if e.journey == journey and e.order > x.order:
                nxt = e.t
                break
        if nxt <= x.deadline or SupersededStall(journey, x).suffix() in state.superseded:
            return
        if alert_id("stall", cid, journey, x.id) in state.open_alerts:
            return
        self._supersede(cid, state, journey, x, wm, now_ms, step)

    def _supersede(
        self, cid: str, state: CustomerState, journey: str, x: Mark, wm: int | None, now_ms: int, step: Step
    ) -> None:
        """X, no longer J's latest, stalls: at once when the watermark is at its deadline, else by its own
        superseded-stall timer (whose member holds X, so firing it needs no state)."""
        assert x.deadline is not None
        if wm is not None and x.deadline <= wm:
            scratch = CustomerState()  # X is no longer J's mark here: firing must not touch the timers
            self._fire(cid, scratch, journey, x, now_ms, step, persona_of(state))
            state.open_alerts.update(scratch.open_alerts)
        else:
            suffix = SupersededStall(journey, x).suffix()
            state.superseded[suffix] = x.deadline
            step.extra_timers[suffix] = ArmTimer(x.deadline)

    def _mark_of(self, entry: Entry) -> Mark:
        """The mark a J-event sets: its stall deadline by its stage's SLA (None: a terminal stage)."""
        assert entry.journey is not None and entry.stage is not None
        sla = self.defs.sla_ms(entry.journey, entry.stage)
        deadline = None if self.defs.is_terminal(entry.journey, entry.stage) else entry.t + sla
        return Mark(entry.t, entry.id, entry.stage, entry.channel, deadline, sla)

    def _retract_stall(
        self, cid: str, state: CustomerState, journey: str, mark: Mark, now_ms: int, step: Step
    ) -> None:
        """X's successor arrived by X's deadline after all (data later than the lateness): a stall that
        already fired for X was untrue. It is closed in Redis and re-published closed (a retraction), and
        the drop-off it counted is taken back."""
        aid = mark.fired or alert_id("stall", cid, journey, mark.id)  # no 'fired': stored by an older version
        if state.open_alerts.pop(aid, None) is None:
            return  # never fired (the usual case), or already closed
        step.closed.append(aid)
        st = self.defs.stage(journey, mark.stage)
        severity = "high" if st is not None and st.importance >= 3 else "medium"
        doc = stall_alert(
            mark.fired_for or cid,
            journey,
            mark.id,
            mark.stage,
            mark.deadline or mark.t,
            mark.sla_ms,
            severity,
            now_ms,
            persona_of(state),
        )
        doc["alert_id"], doc["status"] = aid, "closed"
        doc["title"] = f"Retracted: {mark.stage} did not stall, the next step arrived late"[:200]
        step.alerts.append(doc)
        step.count(cell_key(journey, mark.stage, mark.channel), minute_of(mark.t), 0, -1)

    @staticmethod
    def _close(state: CustomerState, step: Step, match: Callable[[Any], bool]) -> None:
        for aid in [a for a, m in state.open_alerts.items() if match(m)]:
            del state.open_alerts[aid]
            step.closed.append(aid)

    # -- timers ----------------------------------------------------------------------------------
    def on_notify(self, cid: str, state: CustomerState, journey: str, wm: int, now_ms: int) -> Step:
        """A claimed stall timer of ``journey`` is due by watermark ``wm``: fire when X still stalls."""
        step = Step()
        mark = state.marks.get(journey)
        if journey not in state.timers:
            return step  # a stale index entry: the state's timer fired already or was cancelled
        if mark is None or mark.deadline is None or mark.deadline > wm:
            return step  # progress re-armed it meanwhile (that timer is still pending), or terminal
        self._fire(cid, state, journey, mark, now_ms, step)
        return step

    def on_notify_superseded(
        self, cid: str, suffix: str, now_ms: int, state: CustomerState | None = None
    ) -> Step:
        """A due timer of a superseded X (see ``_progress``): it stalls, its details are in the member.
        ``state``, the customer's current state when known, is only read for the persona."""
        step = Step()
        sup = SupersededStall.parse(suffix)
        if sup is None:
            raise ValueError(f"not a superseded-stall timer: {suffix[:80]!r}")
        self._fire(
            cid, CustomerState(), sup.journey, sup.mark, now_ms, step, persona_of(state) if state else None
        )
        return step

    def _fire(
        self,
        cid: str,
        state: CustomerState,
        journey: str,
        mark: Mark,
        now_ms: int,
        step: Step,
        persona: str | None = None,
    ) -> None:
        assert mark.deadline is not None
        state.timers.pop(journey, None)
        st = self.defs.stage(journey, mark.stage)
        severity = "high" if st is not None and st.importance >= 3 else "medium"
        alert = stall_alert(
            cid,
            journey,
            mark.id,
            mark.stage,
            mark.deadline,
            mark.sla_ms,
            severity,
            now_ms,
            persona or persona_of(state),
        )
        step.alerts.append(alert)
        state.open_alerts[alert["alert_id"]] = summary(alert, now_ms)
        mark.fired, mark.fired_for = alert["alert_id"], cid
        step.count(cell_key(journey, mark.stage, mark.channel), minute_of(mark.t), 0, 1)

    # -- merges ----------------------------------------------------------------------------------
    def on_fold(self, cid: str, survivor: CustomerState, loser: CustomerState, now_ms: int) -> Step:
        """Fold a merged-away customer in, then judge the events whose predecessors may have changed."""
        step = Step()
        result: Fold = fold(survivor, loser)
        if result.first_new_t is not None:
            start = next(i for i, e in enumerate(survivor.buffer) if e.t >= result.first_new_t)
            self._evaluate_from(cid, survivor, start, now_ms, step)
        for journey, mark in result.outpaced:  # a side's pending X, now followed by the other side's events
            self._judge_superseded(cid, survivor, journey, mark, None, now_ms, step)
        survivor.trim(self.max_buffer_events, self.max_age_ms)
        return step

    def expire(self, state: CustomerState, now_ms: int, ttl_ms: int) -> list[str]:
        """Open alerts older than ``ttl_ms`` (wall clock) leave the open set."""
        step = Step()
        self._close(state, step, lambda m: now_ms - m.detected_ms > ttl_ms)
        return step.closed
