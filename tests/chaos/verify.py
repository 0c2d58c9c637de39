"""The verifier (pure): what the pipeline made of the population under faults, against the ground truth.

In the spirit of Kafka's StreamsEosTest verification: every input accounted for exactly once — each valid
event in its final customer's journey once (and in no other), each malformed record dead-lettered — plus
the simulator's own scoring (services/simulator/evaluate.py) of alerts per type and of the stitching.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.simulator.evaluate import Report, evaluate
from tests.chaos.readback import Rec

MIN_SCORE = 0.99
EXAMPLES = 5


@dataclass(frozen=True)
class EventInfo:
    customer: str  # the true customer
    t_ms: int
    journey: str | None


@dataclass
class Outputs:
    stitched: list[Rec]
    alerts: list[Rec]
    dlq: list[Rec]
    bad_offsets: set[tuple[int, int]]  # where the malformed inputs landed on channel-events
    final_customer: dict[str, str]  # event id -> final customer id (aliases resolved)
    timelines: dict[str, list[str]]  # every customer timeline in Redis
    redis_alerts: dict[str, dict[str, Any]]  # alerts_by_id, decoded
    open_alerts: dict[str, list[str]]  # customer id -> open alert ids
    resolve: dict[str, str]  # customer id -> final customer id, for every id named anywhere
    fault_times: list[tuple[float, float, str]]  # (wall start s, wall end s, kind)


@dataclass
class Verdict:
    report: Report
    figures: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def verify(truth: Mapping[str, Any], events: Mapping[str, EventInfo], out: Outputs) -> Verdict:
    docs = [d for d in (r.doc() for r in out.alerts) if d is not None]
    tl = {cid: set(ids) for cid, ids in out.timelines.items()}
    report = evaluate(truth, docs, out.final_customer, tl)
    v = Verdict(report)
    _journeys(v, events, out)
    _alerts(v, truth, out, docs)
    _stalls(v, truth, events, out)
    _dead_letters(v, out)
    for s in report.types.values():
        if s.precision < MIN_SCORE or s.recall < MIN_SCORE:
            false, missed = s.raised - s.matched_raised, s.expected - s.matched_expected
            v.failures.append(
                f"{s.type}: precision {s.precision:.4f} ({false} false of {s.raised}), "
                f"recall {s.recall:.4f} ({missed} missed of {s.expected})"
            )
    if report.stitching.false_merges:
        v.failures.append(f"{report.stitching.false_merges} false merge(s)")
    return v


def _journeys(v: Verdict, events: Mapping[str, EventInfo], out: Outputs) -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for cid, ids in out.timelines.items():
        for e in ids:
            where[e].append(cid)
    stitched_ids = Counter(d.get("event_id") for d in (r.doc() for r in out.stitched) if d)
    lost = [e for e in events if out.final_customer.get(e) not in where.get(e, ())]
    twice = [e for e in events if len(where.get(e, ())) > 1]
    v.figures.update(
        events=len(events),
        stitched_distinct=sum(1 for e in events if stitched_ids[e]),
        stitched_topic_duplicates=sum(n - 1 for n in stitched_ids.values() if n > 1),
        lost=len(lost),
        in_several_journeys=len(twice),
        false_merges=v.report.stitching.false_merges,
        missed_merges=v.report.stitching.missed_merges,
    )
    v.examples["lost"] = [
        f"{e} (true customer {events[e].customer}, stitched as "
        f"{out.final_customer.get(e, 'never')}, in timelines {where.get(e, [])})"
        for e in lost[:EXAMPLES]
    ]
    v.examples["in several journeys"] = [f"{e}: {where[e]}" for e in twice[:EXAMPLES]]
    if lost:
        v.failures.append(f"{len(lost)} of {len(events)} events not in their final customer's journey")
    if twice:
        v.failures.append(f"{len(twice)} events in more than one customer's journey")


def _alerts(v: Verdict, truth: Mapping[str, Any], out: Outputs, docs: list[dict[str, Any]]) -> None:
    # Redis: one alert per (type, final customer, trigger event), one open-alert hash per alert id.
    logical: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for aid, a in out.redis_alerts.items():
        ids = (a.get("evidence") or {}).get("event_ids") or [""]
        cid = str(a.get("customer_id"))
        logical[(str(a.get("type")), out.resolve.get(cid, cid), ids[-1])].add(aid)
    redis_dups = {k: ids for k, ids in logical.items() if len(ids) > 1 and k[0] != "dropoff_spike"}
    holders: dict[str, list[str]] = defaultdict(list)
    for cid, ids in out.open_alerts.items():
        for aid in ids:
            holders[aid].append(cid)
    open_twice = {aid: cids for aid, cids in holders.items() if len(cids) > 1}
    # The topic: the same alert (id, status, severity) published more than once; a repeat is explained when
    # a fault (kill, bounce, worker joining or leaving, crash restart) happened between the two copies.
    copies: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for rec, d in zip(out.alerts, (r.doc() for r in out.alerts), strict=True):
        if d is not None:
            key = (str(d.get("alert_id")), str(d.get("type")), str(d.get("status")), str(d.get("severity")))
            copies[key].append(rec.timestamp_ms / 1000)
    repeats = {k: ts for k, ts in copies.items() if len(ts) > 1}
    unexplained = {
        k: ts
        for k, ts in repeats.items()
        if not any(min(ts) - 1 <= start <= max(ts) for start, _, _ in out.fault_times)
    }
    final = {str(d.get("alert_id")): d for d in docs}  # the last record of an id is its final word
    statuses = Counter(f"{d.get('type')}/{d.get('status')}" for d in final.values())
    v.figures.update(
        alert_records=len(docs),
        alert_ids=len(final),
        final_alert_status=dict(sorted(statuses.items())),
        topic_duplicate_alerts=sum(len(ts) - 1 for ts in repeats.values()),
        topic_duplicates_without_fault=sum(len(ts) - 1 for ts in unexplained.values()),
        topic_duplicates_without_fault_by_type=dict(Counter(k[1] for k in unexplained)),
        redis_alerts=len(out.redis_alerts),
        redis_duplicate_alerts=len(redis_dups),
        redis_alert_ids_open_twice=len(open_twice),
        expected_alerts=len(truth["alerts"]),
    )
    v.examples["redis duplicate alerts"] = [
        f"{k}: {sorted(ids)}" for k, ids in list(redis_dups.items())[:EXAMPLES]
    ]
    v.examples["alert ids open under several customers"] = [
        f"{a}: {c}" for a, c in list(open_twice.items())[:EXAMPLES]
    ]
    v.examples["topic duplicates without a fault between"] = [
        f"{k[0]} ({k[1]}, {k[2]}, {k[3]}) x{len(ts)} within {max(ts) - min(ts):.2f} s"
        for k, ts in list(unexplained.items())[:EXAMPLES]
    ]
    if redis_dups:
        v.failures.append(f"{len(redis_dups)} alert(s) stored in Redis under more than one alert id")
    if open_twice:
        v.failures.append(f"{len(open_twice)} alert id(s) open under more than one customer in Redis")


def _stalls(v: Verdict, truth: Mapping[str, Any], events: Mapping[str, EventInfo], out: Outputs) -> None:
    """Why each false stall fired: was the event that ends the stall (the customer's next event of that
    journey) already sent when the stall was published (input queued, not yet read: a catch-up), or not
    sent yet (the wall clock ran ahead of the replayed input)?"""
    s = v.report.types["stall"]
    if not s.unexpected and s.raised == s.matched_raised:
        v.figures["false_stalls"] = {}
        return
    sent_at = {
        d["event_id"]: r.timestamp_ms
        for r, d in ((r, r.doc()) for r in out.stitched)
        if d and "event_id" in d
    }
    by_customer: dict[str, list[tuple[int, str, str | None]]] = defaultdict(list)
    for e, info in events.items():
        by_customer[info.customer].append((info.t_ms, e, info.journey))
    expected = {a["trigger"] for a in truth["alerts"] if a["type"] == "stall"}
    final: dict[str, tuple[Rec, dict[str, Any]]] = {}  # alert id -> its last record, as evaluate reads it
    was_closed: set[str] = set()  # ids retracted at some point (a later open copy undid the retraction)
    fired_at: dict[str, int] = {}  # alert id -> when it was first published (Kafka timestamp, ms)
    for rec in out.alerts:
        d = rec.doc()
        if d and d.get("type") == "stall":
            final[str(d.get("alert_id"))] = (rec, d)
            fired_at.setdefault(str(d.get("alert_id")), rec.timestamp_ms)
            if d.get("status") == "closed":
                was_closed.add(str(d.get("alert_id")))
    kinds: Counter[str] = Counter()
    shown: list[str] = []
    for _, d in final.values():
        trigger = ((d.get("evidence") or {}).get("event_ids") or [""])[-1]
        if d.get("status") == "closed" or trigger in expected or trigger not in events:
            continue
        info = events[trigger]
        journey = (d.get("journey") or {}).get("type")
        later = sorted(x for x in by_customer[info.customer] if x[0] > info.t_ms and x[2] == journey)
        if not later:
            kind, why = "no later event of the journey", ""
        else:
            nxt = later[0][1]
            if nxt not in sent_at:
                kind, why = "successor never stitched", f"; next event {nxt} never stitched"
            else:
                lag = (fired_at[str(d.get("alert_id"))] - sent_at[nxt]) / 1000
                kind = "successor already queued" if lag >= 0 else "successor not sent yet"
                when = "before" if lag >= 0 else "after"
                why = f"; next event {nxt} sent {abs(lag):.1f} s {when} the stall"
        if str(d.get("alert_id")) in was_closed:
            kind, why = kind + ", retracted then re-published open", why + " (retracted, then open again)"
        kinds[kind] += 1
        if len(shown) < EXAMPLES:
            stage, deadline = (d.get("journey") or {}).get("stage"), (d.get("evidence") or {}).get("deadline")
            shown.append(
                f"{d.get('alert_id')} trigger {trigger} ({journey}/{stage}, deadline {deadline}){why}"
            )
    v.figures["false_stalls"] = dict(kinds)
    v.examples["false stalls"] = shown
    v.examples["missed stalls"] = s.missed[:EXAMPLES]


def _dead_letters(v: Verdict, out: Outputs) -> None:
    def source(r: Rec) -> tuple[str, int, int]:
        h = r.headers
        return (
            h.get("dlq_source_topic", b"").decode(),
            int(h.get("dlq_source_partition", b"-1")),
            int(h.get("dlq_source_offset", b"-1")),
        )

    sources = Counter(source(r) for r in out.dlq)
    from_input = {(p, o) for (t, p, o) in sources if t.endswith("channel-events")}
    reasons = Counter(r.headers.get("dlq_reason", b"?").decode() for r in out.dlq)
    missing = out.bad_offsets - from_input
    valid_dead = from_input - out.bad_offsets
    v.figures.update(
        bad_inputs=len(out.bad_offsets),
        dlq_records=len(out.dlq),
        bad_inputs_dead_lettered=len(out.bad_offsets & from_input),
        dlq_duplicates=sum(n - 1 for n in sources.values()),
        valid_records_dead_lettered=len(valid_dead),
        dlq_reasons=dict(reasons),
    )
    v.examples["bad inputs not dead-lettered"] = [
        f"channel-events {p}@{o}" for p, o in sorted(missing)[:EXAMPLES]
    ]
    v.examples["valid records dead-lettered"] = [f"{s}" for s in sorted(valid_dead)[:EXAMPLES]]
    if missing:
        v.failures.append(f"{len(missing)} of {len(out.bad_offsets)} bad inputs not on the DLQ")
    if valid_dead:
        v.failures.append(f"{len(valid_dead)} valid input record(s) dead-lettered")


def event_index(
    truth_customers: Mapping[str, Any], events: Mapping[str, Iterable[Mapping[str, Any]]], parse_ms: Any
) -> dict[str, EventInfo]:
    """event id -> (true customer, event time, journey type) for every valid event of the population."""
    out = {}
    for customer, evs in events.items():
        for e in evs:
            out[e["event_id"]] = EventInfo(
                customer, parse_ms(e["occurred_at"]), (e.get("journey") or {}).get("type")
            )
    assert set(out) == {e for c in truth_customers.values() for e in c["events"]}
    return out
