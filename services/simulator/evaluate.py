"""Comparing what the pipeline did with the ground truth: alert precision/recall per type and stitching
accuracy. Pure: the Kafka/Redis reading lives in ``collect.py``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from services.common.timeutil import parse_rfc3339_ms
from services.simulator.truth import ALERT_TYPES, PER_CUSTOMER_TYPES

GRACE_MS = 2 * 60_000  # a spike alert may name a minute up to 2 min after the incident (RULES.md)


@dataclass
class TypeScore:
    type: str
    expected: int = 0
    raised: int = 0
    matched_expected: int = 0  # expected alerts (or incidents) found
    matched_raised: int = 0  # raised alerts that match the truth
    missed: list[str] = field(default_factory=list)  # a few examples, for diagnosis
    unexpected: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.matched_raised / self.raised if self.raised else 1.0

    @property
    def recall(self) -> float:
        return self.matched_expected / self.expected if self.expected else 1.0


@dataclass
class StitchScore:
    events: int = 0
    seen: int = 0
    correct: int = 0
    false_merges: int = 0  # extra true customers sharing a final customer id
    missed_merges: int = 0  # extra final ids a true customer is split over
    customers_true: int = 0
    customers_found: int = 0
    in_journey_store: int | None = None  # events found in their final customer's timeline in Redis

    @property
    def accuracy(self) -> float:
        return self.correct / self.events if self.events else 1.0


@dataclass
class Report:
    types: dict[str, TypeScore]
    stitching: StitchScore
    alerts_read: int
    duplicate_alerts: int
    dead_letters: int | None = None  # records on the DLQ (None: not read)
    malformed_sent: int | None = None  # malformed records the truth says were sent

    def to_json(self) -> dict[str, Any]:
        return {
            "types": {
                t: {**asdict(s), "precision": round(s.precision, 4), "recall": round(s.recall, 4)}
                for t, s in self.types.items()
            },
            "stitching": {**asdict(self.stitching), "accuracy": round(self.stitching.accuracy, 4)},
            "alerts_read": self.alerts_read,
            "duplicate_alerts": self.duplicate_alerts,
            "dead_letters": self.dead_letters,
            "malformed_sent": self.malformed_sent,
        }

    def failures(
        self, min_precision: float, min_recall: float, max_false_merges: int, min_accuracy: float
    ) -> list[str]:
        """Why the run is below the thresholds (empty: it passes)."""
        out = []
        for s in self.types.values():
            if s.precision < min_precision:
                out.append(f"{s.type} precision {s.precision:.4f} < {min_precision}")
            if s.recall < min_recall:
                out.append(f"{s.type} recall {s.recall:.4f} < {min_recall}")
        if self.stitching.false_merges > max_false_merges:
            out.append(f"false merges {self.stitching.false_merges} > {max_false_merges}")
        if self.stitching.accuracy < min_accuracy:
            out.append(f"stitching accuracy {self.stitching.accuracy:.4f} < {min_accuracy}")
        return out


def score_alerts(
    truth: Mapping[str, Any], alerts: Iterable[Mapping[str, Any]]
) -> tuple[dict[str, TypeScore], int, int]:
    """Per-customer alerts match on (type, trigger = last evidence event id); spikes on incidents."""
    types = {t: TypeScore(t) for t in ALERT_TYPES}
    expected = {(a["type"], a["trigger"]) for a in truth["alerts"]}
    raised: set[tuple[str, str]] = set()
    spikes: dict[str, Mapping[str, Any]] = {}
    read = 0
    # The detector re-publishes an alert under the same alert_id when a late event changes its
    # severity or retracts it (status=closed); records of one id share a key and so a partition, so
    # the last one read is the detector's final word on it.
    final: dict[str, Mapping[str, Any]] = {}
    for a in alerts:
        read += 1
        final[str(a.get("alert_id"))] = a
    dup = read - len(final)
    for alert_id, a in final.items():
        if a.get("status") == "closed":
            continue
        if a.get("type") == "dropoff_spike":
            spikes[alert_id] = a
        elif a.get("type") in types:
            ids = (a.get("evidence") or {}).get("event_ids") or [""]
            raised.add((a["type"], ids[-1]))
    for t in PER_CUSTOMER_TYPES:
        exp = {k for k in expected if k[0] == t}
        got = {k for k in raised if k[0] == t}
        s = types[t]
        s.expected, s.raised = len(exp), len(got)
        s.matched_expected = s.matched_raised = len(exp & got)
        s.missed = sorted(k[1] for k in exp - got)[:20]
        s.unexpected = sorted(k[1] for k in got - exp)[:20]
    _score_spikes(types["dropoff_spike"], truth.get("incidents", []), spikes.values())
    return types, read, dup


def _score_spikes(
    s: TypeScore, incidents: list[Mapping[str, Any]], alerts: Iterable[Mapping[str, Any]]
) -> None:
    def cell(a: Mapping[str, Any]) -> tuple[str, str, str, int]:
        ev, j = a.get("evidence") or {}, a.get("journey") or {}
        return (
            j.get("type", ""),
            j.get("stage", ""),
            ev.get("channel", ""),
            parse_rfc3339_ms(ev.get("minute") or a["occurred_at"]),
        )

    cells = [cell(a) for a in alerts]
    hit: set[int] = set()
    s.expected, s.raised = len(incidents), len(cells)
    for c in cells:
        matches = [
            i
            for i, inc in enumerate(incidents)
            if (inc["journey"], inc["stage"], inc["channel"]) == c[:3]
            and parse_rfc3339_ms(inc["start"]) <= c[3] <= parse_rfc3339_ms(inc["end"]) + GRACE_MS
        ]
        if matches:
            s.matched_raised += 1
            hit.update(matches)
        else:
            s.unexpected.append(f"{c[0]}/{c[1]}/{c[2]}@{c[3]}")
    s.matched_expected = len(hit)
    s.missed = [
        f"{inc['journey']}/{inc['stage']}/{inc['channel']}@{inc['start']}"
        for i, inc in enumerate(incidents)
        if i not in hit
    ]


def score_stitching(truth: Mapping[str, Any], final_customer: Mapping[str, str]) -> StitchScore:
    """``final_customer``: event_id -> the customer id the event ended up with (aliases resolved)."""
    s = StitchScore()
    per_true: dict[str, Counter[str]] = {}
    per_final: dict[str, Counter[str]] = defaultdict(Counter)
    for true_id, info in truth["customers"].items():
        counts: Counter[str] = Counter()
        for event_id in info["events"]:
            s.events += 1
            cid = final_customer.get(event_id)
            if cid is not None:
                s.seen += 1
                counts[cid] += 1
                per_final[cid][true_id] += 1
        per_true[true_id] = counts
    owner = {cid: c.most_common(1)[0][0] for cid, c in per_final.items()}
    for true_id, counts in per_true.items():
        if not counts:
            continue
        main = counts.most_common(1)[0][0]
        if owner[main] == true_id:
            s.correct += counts[main]
        s.missed_merges += len(counts) - 1
    s.false_merges = sum(len(c) - 1 for c in per_final.values())
    s.customers_true = len(truth["customers"])
    s.customers_found = len(per_final)
    return s


def evaluate(
    truth: Mapping[str, Any],
    alerts: Iterable[Mapping[str, Any]],
    final_customer: Mapping[str, str],
    timelines: Mapping[str, set[str]] | None = None,
) -> Report:
    """``timelines``: final customer id -> event ids in its journey store timeline (None: not read)."""
    types, read, dup = score_alerts(truth, alerts)
    malformed = (truth.get("counts") or {}).get("malformed")
    stitching = score_stitching(truth, final_customer)
    if timelines is not None:
        stitching.in_journey_store = sum(
            1 for e, cid in final_customer.items() if e in timelines.get(cid, ())
        )
    return Report(types, stitching, read, dup, malformed_sent=malformed)
