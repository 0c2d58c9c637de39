"""A customer's whole contribution to the map, derived from its events and alerts in event-time order.

Counters are keyed ``(minute, journey, stage, persona, channel, metric)``; the minute is the event-time
minute (epoch ms) of what is counted. Metrics (docs/journey-map.md lists them for readers):

- ``n`` touches at the crossing of a stage and a channel; ``in``/``out`` (direction), ``on``/``off``
  (visibility); ``dp:<department>`` touches by department;
- ``e`` entries into the stage (the customer's previous event of that journey type was at another stage,
  or there was none since the last terminal stage);
- ``m><to>`` moves out of the stage to ``to`` (a Sankey link), counted on the *from* stage, at the time of
  the move, in the channel of the event that moved; ``cv`` conversions: moves forward (a later stage, or a
  terminal one not reached by an abandoning event); ``dw<k>`` time in the stage, histogram bucket ``k``;
- ``ab`` drop-offs by abandonment: an event with outcome ``abandoned`` at the stage, or one that ends the
  journey in a terminal stage (charged to the stage it left);
- ``c><from>`` channel transitions between consecutive events of the journey type (swimlane to swimlane);
- ``ho:<from>><to>`` hand-offs between departments (consecutive events with a department), ``hf:…`` those
  whose receiving event is unresolved (the hand-off failed);
- ``ss`` sentiment sum (in thousandths) and ``sn`` count; ``em:<emotion>``;
- ``np``/``nn``/``nd`` NPS promoters (9-10), passives (7-8), detractors (0-6): an answer counts at the stage
  the customer was in when giving it (their latest journey event), anywhere in its journey type;
- ``al:<type>`` open gap alerts at the stage (the pain points); a stall is also the stage's stalled drop-off.

``now``: customers currently in a stage, keyed ``(journey, stage, persona, channel)`` (the stage of each
journey type's latest event, unless terminal). ``members``: the open alerts behind each pain point,
``(journey, stage, type) -> {"<customer>|<alert id>|<persona>": occurred ms}``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from services.journey_map.core.bounds import OTHER, Bounds
from services.journey_map.core.state import CustomerState, Ev

MINUTE_MS = 60_000
# Upper bounds (seconds) of the time-in-stage histogram buckets; the last one is open.
DWELL_BOUNDS_S = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 345600, 604800, 1209600)
RESOLVED = frozenset({"success", "resolved"})

CellKey = tuple[int, str, str, str, str, str]
NowKey = tuple[str, str, str, str]
MemberKey = tuple[str, str, str]


@dataclass
class Contribution:
    counts: Counter[CellKey] = field(default_factory=Counter)
    now: Counter[NowKey] = field(default_factory=Counter)
    members: dict[MemberKey, dict[str, int]] = field(default_factory=dict)


def dwell_bucket(ms: int) -> int:
    seconds = max(0, ms) / 1000
    for k, bound in enumerate(DWELL_BOUNDS_S):
        if seconds <= bound:
            return k
    return len(DWELL_BOUNDS_S)


def persona_of(state: CustomerState) -> str:
    """The persona of the customer's latest event that names one (``other`` when none does)."""
    best: Ev | None = None
    for ev in state.events:
        if ev.persona is not None and (best is None or ev.order > best.order):
            best = ev
    return best.persona if best is not None and best.persona else OTHER


@dataclass
class _Run:
    """Where a customer stands in one journey type while its events are walked in time order."""

    stage: str
    entered: int
    last: Ev


def contribution(state: CustomerState, bounds: Bounds) -> Contribution:
    out = Contribution()
    if state.into is not None or (not state.events and not state.alerts):
        return out
    persona = persona_of(state)
    counts = out.counts
    runs: dict[str, _Run] = {}
    last_dept: dict[str, Ev] = {}
    context: tuple[str, str] | None = None  # (journey, stage) of the latest journey event so far
    by_id: dict[str, Ev] = {}
    for ev in sorted(state.events, key=lambda e: e.order):
        by_id[ev.id] = ev
        minute = ev.t // MINUTE_MS * MINUTE_MS
        if ev.journey is not None and ev.stage is not None:
            j, s, ch = ev.journey, ev.stage, ev.channel

            def add(
                stage: str, metric: str, n: int = 1, *, channel: str = ch, at: int = minute, journey: str = j
            ) -> None:
                counts[(at, journey, stage, persona, channel, metric)] += n

            add(s, "n")
            add(s, "in" if ev.inbound else "out")
            add(s, "on" if ev.onstage else "off")
            run = runs.get(j)
            if run is not None and run.last.channel != ch:
                add(s, f"c>{run.last.channel}")
            if run is None or run.stage != s:
                add(s, "e")
                if run is not None:
                    add(run.stage, f"m>{s}")
                    add(run.stage, f"dw{dwell_bucket(ev.t - run.entered)}")
                    if bounds.is_forward(j, run.stage, s) and ev.outcome != "abandoned":
                        add(run.stage, "cv")
                run = _Run(s, ev.t, ev)
            if ev.outcome == "abandoned":
                charged = s
                if bounds.is_terminal(j, s) and runs.get(j) is not None and runs[j].stage != s:
                    charged = runs[j].stage
                add(charged, "ab")
            if ev.department is not None:
                add(s, f"dp:{ev.department}")
                before = last_dept.get(j)
                if before is not None and before.department != ev.department:
                    add(s, f"ho:{before.department}>{ev.department}")
                    if ev.outcome not in RESOLVED:
                        add(s, f"hf:{before.department}>{ev.department}")
                last_dept[j] = ev
            if ev.sentiment is not None:
                add(s, "ss", round(ev.sentiment * 1000))
                add(s, "sn")
            if ev.emotion is not None:
                add(s, f"em:{ev.emotion}")
            run.last = ev
            if bounds.is_terminal(j, s):
                runs.pop(j, None)  # the journey is over; a later event of the type starts a new one
                last_dept.pop(j, None)
            else:
                runs[j] = run
            context = (j, s)
        if ev.nps is not None:
            cj, cs = context or (OTHER, OTHER)
            metric = "np" if ev.nps >= 9 else "nn" if ev.nps >= 7 else "nd"
            counts[(minute, cj, cs, persona, ev.channel, metric)] += 1
    for j, run in runs.items():
        out.now[(j, run.stage, persona, run.last.channel)] += 1
    cid_hint = ""  # the customer id is added by the adapter (it is not part of the state)
    for alert in state.alerts:
        if not alert.open:
            continue
        trigger = by_id.get(alert.trigger)
        channel = alert.channel or (trigger.channel if trigger is not None else OTHER)
        minute = alert.t // MINUTE_MS * MINUTE_MS
        counts[(minute, alert.journey, alert.stage, persona, channel, f"al:{alert.type}")] += 1
        member = f"{cid_hint}|{alert.id}|{persona}"
        out.members.setdefault((alert.journey, alert.stage, alert.type), {})[member] = alert.t
    return out


def with_customer(contrib: Contribution, cid: str) -> Contribution:
    """The pain-point members named by the customer they belong to."""
    contrib.members = {k: {f"{cid}{m}": t for m, t in ms.items()} for k, ms in contrib.members.items()}
    return contrib


@dataclass
class Delta:
    """What a batch writes: counter increments (never zero), 'now' increments, members to add/remove."""

    counts: Counter[CellKey] = field(default_factory=Counter)
    now: Counter[NowKey] = field(default_factory=Counter)
    add: dict[MemberKey, dict[str, int]] = field(default_factory=dict)
    remove: dict[MemberKey, set[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.counts or self.now or self.add or self.remove)

    def merge(self, before: Contribution, after: Contribution) -> None:
        """Add ``after - before`` to this delta."""
        for key, n in after.counts.items():
            self.counts[key] += n
        for key, n in before.counts.items():
            self.counts[key] -= n
        for nkey, n in after.now.items():
            self.now[nkey] += n
        for nkey, n in before.now.items():
            self.now[nkey] -= n
        for mkey in set(before.members) | set(after.members):
            old, new = before.members.get(mkey, {}), after.members.get(mkey, {})
            gone = set(old) - set(new)
            added = {m: t for m, t in new.items() if old.get(m) != t}
            if gone:
                self.remove.setdefault(mkey, set()).update(gone)
            if added:
                self.add.setdefault(mkey, {}).update(added)
        self.counts = Counter({k: v for k, v in self.counts.items() if v})
        self.now = Counter({k: v for k, v in self.now.items() if v})
