"""Order independence: any permutation and duplication of the same events gives the same customers,
the same identity graph (up to customer-id labels) and the same journeys."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.stitcher.core.hashed_identifiers import IdentifierHasher
from services.stitcher.core.identifiers import IDENTIFIER_TYPES
from services.stitcher.core.model import InMemoryStitcher
from services.stitcher.settings import parse_limits
from tests.unit.stitcher.events import NOW_MS, arrival, event_set

pytestmark = pytest.mark.unit

ROOMY = parse_limits(",".join(f"{t}=1000" for t in IDENTIFIER_TYPES))
HASHER = IdentifierHasher(b"k", "GB")


def run(values: list[bytes], cap: int = 1000) -> InMemoryStitcher:
    model = InMemoryStitcher(HASHER, ROOMY, cap)
    model.process(values, NOW_MS)
    return model


def components(values: list[bytes]) -> set[frozenset[str]]:
    """Oracle: events linked by any shared identifier (union-find over raw identifiers)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    events = [orjson.loads(v) for v in values]
    for e in events:
        ids = [f"{t}={v}" for t, v in e["identifiers"].items()]
        for other in ids[1:]:
            parent[find(other)] = find(ids[0])
    groups: dict[str, set[str]] = {}
    for e in events:
        first = next(iter(e["identifiers"].items()))
        groups.setdefault(find(f"{first[0]}={first[1]}"), set()).add(e["event_id"])
    return {frozenset(g) for g in groups.values()}


@settings(max_examples=150, deadline=None)
@given(st.data(), event_set())
def test_any_order_and_duplication_gives_the_same_result(data: st.DataObject, events: list[bytes]) -> None:
    first = run(events)
    again = run(data.draw(arrival(events)))
    assert again.event_partition() == first.event_partition() == components(events)
    assert again.graph.partition() == first.graph.partition()
    assert again.journeys_without_labels() == first.journeys_without_labels()


@settings(max_examples=100, deadline=None)
@given(st.data(), event_set(max_events=20, people=2))
def test_the_cap_keeps_the_same_latest_touchpoints_in_any_order(
    data: st.DataObject, events: list[bytes]
) -> None:
    a, b = run(events, cap=3), run(data.draw(arrival(events)), cap=3)

    def kept(m: InMemoryStitcher) -> set[tuple[frozenset[str], str | None]]:
        return {(frozenset(j.timeline), j.summary.get("count")) for j in m.store.journeys.values()}

    assert kept(a) == kept(b)
    assert all(len(j.timeline) <= 3 for j in b.store.journeys.values())


@settings(max_examples=100, deadline=None)
@given(st.data(), event_set())
def test_redelivery_replays_the_same_merge_records(data: st.DataObject, events: list[bytes]) -> None:
    model = run(events)
    before = {m.record_id for m in model.merges}
    model.process(data.draw(st.permutations(events)), NOW_MS)
    assert {m.record_id for m in model.merges} == before
    assert len({m.record_id for m in model.merges if m.kind == "merge"}) == len(model.graph.alias)
