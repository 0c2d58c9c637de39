"""The journey map's pure core: contributions, deltas under redelivery, late events and merges, bounds."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from services.gap_detector.core.definitions import load_definitions
from services.journey_map.core.batch import AlertIn, EventIn, Input, MergeIn, apply, missing_targets
from services.journey_map.core.bounds import Bounds
from services.journey_map.core.contribution import contribution, dwell_bucket
from services.journey_map.core.document import MapQuery, build_document, quantile_s
from services.journey_map.core.state import Alert, Ev, decode

pytestmark = pytest.mark.unit
BOUNDS = Bounds.from_definitions(load_definitions())
MIN = 60_000


class Store:
    """A stand-in for Redis: states by customer and the summed counters every delta was applied to."""

    def __init__(self) -> None:
        self.states: dict[str, bytes] = {}
        self.counts: Counter[tuple[object, ...]] = Counter()
        self.now: Counter[tuple[object, ...]] = Counter()
        self.members: dict[tuple[str, str, str], set[str]] = {}

    def run(self, inputs: Sequence[Input]) -> None:
        from services.journey_map.core.batch import names

        loaded: dict[str, bytes | None] = {c: self.states.get(c) for c in names(inputs)}
        while need := missing_targets(loaded):
            loaded.update({c: self.states.get(c) for c in need})
        out = apply(inputs, loaded, BOUNDS)
        self.states.update(out.states)
        for delta in out.deltas.values():
            self.counts.update(delta.counts)
            self.now.update(delta.now)
            for k, ms in delta.remove.items():
                self.members.setdefault(k, set()).difference_update(ms)
            for k, added in delta.add.items():
                self.members.setdefault(k, set()).update(added)
        self.counts = Counter({k: v for k, v in self.counts.items() if v})
        self.now = Counter({k: v for k, v in self.now.items() if v})

    def metric(self, journey: str, stage: str, metric: str) -> int:
        return sum(v for k, v in self.counts.items() if k[1:3] == (journey, stage) and k[5] == metric)


def ev(i: int, stage: str, channel: str = "web", journey: str = "purchase", **kw: object) -> Ev:
    return Ev(
        t=1_000_000_000_000 + i * 10 * MIN,
        id=f"e{i}",
        channel=channel,
        journey=journey,
        stage=stage,
        persona=kw.pop("persona", "digital_native"),
        **kw,
    )  # type: ignore[arg-type]


PATH = [
    ev(0, "browse"),
    ev(1, "browse", "mobile_app"),
    ev(2, "cart"),
    ev(3, "checkout", department="sales"),
    ev(
        4,
        "payment",
        "phone",
        department="billing",
        outcome="unresolved",
        sentiment=-0.5,
        emotion="frustrated",
    ),
    ev(5, "converted", outcome="success", sentiment=0.5),
    ev(6, "", journey="", nps=10, channel="email"),
]
PATH[-1] = Ev(t=PATH[-1].t, id="e6", channel="email", nps=10)


def test_a_journey_counts_entries_moves_conversions_and_nps_at_the_stage() -> None:
    s = Store()
    s.run([EventIn("c_00000001", e) for e in PATH])
    stages = ("browse", "cart", "checkout", "payment", "converted")
    assert [s.metric("purchase", st, "e") for st in stages] == [1, 1, 1, 1, 1]
    assert s.metric("purchase", "browse", "n") == 2 and s.metric("purchase", "browse", "cv") == 1
    assert s.metric("purchase", "payment", "m>converted") == 1 and s.metric("purchase", "payment", "cv") == 1
    assert s.metric("purchase", "payment", "ho:sales>billing") == 1
    assert s.metric("purchase", "payment", "hf:sales>billing") == 1  # unresolved on the receiving side
    assert s.metric("purchase", "converted", "np") == 1  # the survey after the journey ended
    assert s.metric("purchase", "browse", "dw" + str(dwell_bucket(20 * MIN))) == 1
    assert not s.now  # ended in a terminal stage: nobody is in a stage now


@pytest.mark.parametrize("seed", range(5))
def test_any_arrival_order_and_redelivery_give_the_figures_of_event_time_order(seed: int) -> None:
    ordered = Store()
    ordered.run([EventIn("c_00000001", e) for e in PATH])
    shuffled, rng = Store(), random.Random(seed)
    arrivals = PATH + rng.sample(PATH, 3)  # some redelivered
    rng.shuffle(arrivals)
    for i in range(0, len(arrivals), 2):
        shuffled.run([EventIn("c_00000001", e) for e in arrivals[i : i + 2]])
    assert shuffled.counts == ordered.counts and shuffled.now == ordered.now


def test_redelivered_batch_changes_nothing() -> None:
    s = Store()
    batch: list[Input] = [EventIn("c_00000001", e) for e in PATH[:3]]
    s.run(batch)
    loaded = {"c_00000001": s.states["c_00000001"]}
    assert not apply(batch, loaded, BOUNDS).deltas


def test_a_merged_customer_is_counted_once_whichever_comes_first() -> None:
    one = Store()
    one.run([EventIn("c_0000000a", e) for e in PATH[:4]])
    for order in ("merge_last", "merge_first"):
        s = Store()
        merge: list[Input] = [MergeIn("c_0000000a", "c_0000000b")]
        if order == "merge_first":
            s.run(merge)
        s.run([EventIn("c_0000000a", e) for e in PATH[:2]])
        s.run([EventIn("c_0000000b", e) for e in PATH[2:4]])  # the loser's events (may come after the merge)
        if order == "merge_last":
            s.run(merge)
            s.run(merge)  # redelivered
        assert s.counts == one.counts, order
        assert s.now == one.now and sum(s.now.values()) == 1, order
        assert decode(s.states["c_0000000b"]).into == "c_0000000a"


def test_unknown_values_are_counted_under_other() -> None:
    from services.common.record_codec import decode_stitched

    raw = (
        b'{"schema_version":"1.0","event_id":"x1","occurred_at":"2026-11-01T00:00:00Z",'
        b'"occurred_at_ms":1793491200000,"channel":"fax","touchpoint":"t","direction":"inbound",'
        b'"visibility":"onstage","journey":{"type":"purchase","stage":"haggle"},"persona":"alien",'
        b'"department":"secret_ops","customer_id":"c_00000001","identity_keys":[],"stitched_at_ms":1}'
    )
    from services.journey_map.core.state import ev_from_record

    e = ev_from_record(decode_stitched(raw), BOUNDS)
    assert (e.channel, e.journey, e.stage, e.persona, e.department) == (
        "other",
        "purchase",
        "other",
        "other",
        "other",
    )
    e2 = ev_from_record(decode_stitched(raw.replace(b'"purchase"', b'"barter"')), BOUNDS)
    assert (e2.journey, e2.stage) == ("other", "other")


def test_open_alerts_are_pain_points_and_a_retraction_takes_them_back() -> None:
    s = Store()
    stall = Alert("a_1", "stall", PATH[2].t + 60 * MIN, "purchase", "cart", "e2")
    s.run([EventIn("c_00000001", e) for e in PATH[:3]] + [AlertIn("c_00000001", stall)])
    assert s.metric("purchase", "cart", "al:stall") == 1
    assert s.members[("purchase", "cart", "stall")] == {"c_00000001|a_1|digital_native"}
    s.run(
        [
            AlertIn(
                "c_00000001",
                Alert(**{**{f: getattr(stall, f) for f in stall.__struct_fields__}, "open": False}),
            )
        ]
    )
    assert s.metric("purchase", "cart", "al:stall") == 0 and not s.members[("purchase", "cart", "stall")]


def test_abandoning_into_a_terminal_stage_is_a_dropoff_of_the_stage_left() -> None:
    s = Store()
    s.run([EventIn("c_00000001", e) for e in [ev(0, "cart"), ev(1, "abandoned", outcome="abandoned")]])
    assert s.metric("purchase", "cart", "ab") == 1 and s.metric("purchase", "cart", "cv") == 0
    assert s.metric("purchase", "abandoned", "ab") == 0


def test_document_filters_by_persona_and_channel() -> None:
    s = Store()
    s.run([EventIn("c_00000001", e) for e in PATH])
    s.run(
        [
            EventIn(
                "c_00000002",
                Ev(
                    t=PATH[0].t,
                    id="z0",
                    channel="store",
                    journey="purchase",
                    stage="browse",
                    persona="store_loyal",
                ),
            )
        ]
    )
    hashes = [{"|".join(str(p) for p in k[1:]): v for k, v in s.counts.items()}]
    now = {"|".join(str(p) for p in k): v for k, v in s.now.items()}

    def doc(persona: str | None = None, channel: str | None = None) -> Any:
        return build_document(MapQuery("purchase", persona, channel, 0, 2**41), BOUNDS, hashes, now, 0)

    browse = next(st for st in doc()["stages"] if st["name"] == "browse")
    assert browse["entries"] == 2 and browse["in_stage_now"] == 1
    assert browse["channels"]["store"] == {"touches": 1, "entries": 1}
    loyal = next(st for st in doc("store_loyal")["stages"] if st["name"] == "browse")
    assert loyal["entries"] == 1 and loyal["conversions"] == 0
    web = doc(channel="web")
    assert {"from": "browse", "to": "cart", "count": 1} in web["transitions"]


def test_quantiles_of_the_time_in_stage_histogram() -> None:
    assert quantile_s(Counter(), 0.5) is None
    assert quantile_s(Counter({0: 10}), 0.5) == 30.0
    assert quantile_s(Counter({0: 5, 4: 5}), 0.9) == pytest.approx(1800 + 1800 * 0.8)


def test_contribution_of_a_tombstone_is_empty() -> None:
    from services.journey_map.core.state import tombstone

    assert not contribution(tombstone("c_00000001"), BOUNDS).counts


def test_a_merge_whose_survivor_write_was_lost_is_completed_by_its_redelivery() -> None:
    one = Store()
    one.run([EventIn("c_0000000a", e) for e in PATH[:4]])
    s = Store()
    s.run([EventIn("c_0000000a", e) for e in PATH[:2]])
    s.run([EventIn("c_0000000b", e) for e in PATH[2:4]])
    loaded = {c: s.states.get(c) for c in ("c_0000000a", "c_0000000b")}
    out = apply([MergeIn("c_0000000a", "c_0000000b")], loaded, BOUNDS)
    s.states["c_0000000b"] = out.states["c_0000000b"]  # only the loser's shard was written, then a crash
    s.counts.update(out.deltas["c_0000000b"].counts)
    s.now.update(out.deltas["c_0000000b"].now)
    s.run([MergeIn("c_0000000a", "c_0000000b")])  # the batch is consumed again
    assert s.counts == one.counts and s.now == one.now


def test_dropoffs_by_persona_ignore_the_persona_filter() -> None:
    s = Store()
    s.run([EventIn("c_00000001", e) for e in [ev(0, "cart"), ev(1, "abandoned", outcome="abandoned")]])
    s.run(
        [
            EventIn("c_00000002", e)
            for e in [ev(2, "cart", persona="store_loyal"), ev(3, "checkout", persona="store_loyal")]
        ]
    )
    hashes = [{"|".join(str(p) for p in k[1:]): v for k, v in s.counts.items()}]
    doc = build_document(MapQuery("purchase", "store_loyal", None, 0, 2**41), BOUNDS, hashes, {}, 0)
    cart = {r["persona"]: r for r in doc["dropoffs_by_persona"] if r["stage"] == "cart"}
    assert cart["digital_native"]["abandoned"] == 1 and cart["digital_native"]["rate"] == 1.0
    assert cart["store_loyal"]["abandoned"] == 0 and cart["store_loyal"]["entries"] == 1


def test_an_erased_customer_leaves_no_trace_in_the_map() -> None:
    from services.journey_map.core.batch import erase

    s = Store()
    s.run([EventIn("c_0000000a", e) for e in PATH[:3]] + [EventIn("c_0000000b", PATH[3])])
    s.run([AlertIn("c_0000000b", Alert("a_1", "stall", PATH[3].t, "purchase", "checkout", "e3"))])
    s.run([MergeIn("c_0000000a", "c_0000000b")])
    out = erase(["c_0000000a", "c_0000000b"], dict(s.states), BOUNDS)
    assert out.states == {"c_0000000a": b"", "c_0000000b": b""}
    for delta in out.deltas.values():
        s.counts.update(delta.counts)
        s.now.update(delta.now)
        for k, ms in delta.remove.items():
            s.members[k] -= ms
    assert not +s.counts and not +s.now and not any(s.members.values())
