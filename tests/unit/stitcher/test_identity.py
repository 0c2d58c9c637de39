"""Merge decisions of the identity graph: survivor choice, aliases, limits and conflicts."""

from __future__ import annotations

import pytest

from services.stitcher.core.identity import IdentityGraph
from services.stitcher.settings import parse_limits

pytestmark = pytest.mark.unit

E1, E2, C1, C2, C3, A1, A2 = (
    "email:" + "1" * 64,
    "email:" + "2" * 64,
    "cookie_id:" + "a" * 64,
    "cookie_id:" + "b" * 64,
    "cookie_id:" + "c" * 64,
    "customer_id:" + "d" * 64,
    "customer_id:" + "e" * 64,
)


def test_unseen_identifiers_mint_and_later_events_attach() -> None:
    g = IdentityGraph(parse_limits(""))
    assert g.resolve("e1", 100, [E1, C1], "c_1").customer_id == "c_1"
    assert g.resolve("e2", 50, [C1, C2], "c_x").customer_id == "c_1"
    assert g.customers["c_1"].first_seen_ms == 50
    assert g.ids[C2] == "c_1"


def test_a_linking_event_merges_into_the_earliest_first_seen() -> None:
    g = IdentityGraph(parse_limits(""))
    g.resolve("e1", 200, [C1], "c_a")
    g.resolve("e2", 100, [C2], "c_b")
    res = g.resolve("e3", 300, [C1, C2], "c_z")
    assert res.customer_id == "c_b"
    (merge,) = res.outcomes
    assert (merge.kind, merge.survivor, merge.loser, merge.identifier_types) == (
        "merge",
        "c_b",
        "c_a",
        ("cookie_id",),
    )
    assert g.alias == {"c_a": "c_b"} and g.aliases_of == {"c_b": {"c_a"}}
    assert g.ids[C1] == "c_b" and "c_a" not in g.customers


def test_ties_on_first_seen_go_to_the_smaller_id_and_chains_stay_compressed() -> None:
    g = IdentityGraph(parse_limits(""))
    g.resolve("e1", 100, [C1], "c_b")
    g.resolve("e2", 100, [C2], "c_c")
    g.resolve("e3", 100, [C3], "c_a")
    g.resolve("e4", 100, [C1, C2], "c_z")  # c_c -> c_b
    assert g.resolve("e5", 100, [C2, C3], "c_z").customer_id == "c_a"  # c_b (+c_c) -> c_a
    assert g.alias == {"c_c": "c_a", "c_b": "c_a"}
    assert g.aliases_of == {"c_a": {"c_b", "c_c"}}


def test_a_merge_that_breaks_a_limit_is_a_conflict_and_nothing_merges() -> None:
    g = IdentityGraph(parse_limits("customer_id=1"))
    g.resolve("e1", 100, [A1, C1], "c_a")
    g.resolve("e2", 200, [A2, C2], "c_b")
    res = g.resolve("e3", 300, [C1, C2], "c_z")  # a shared device of two known customers
    assert res.customer_id == "c_a"
    assert res.conflict_types == ("customer_id",)
    (conflict,) = res.outcomes
    assert (conflict.kind, conflict.survivor, conflict.loser, conflict.limit) == (
        "conflict",
        "c_a",
        "c_b",
        "customer_id",
    )
    assert g.alias == {} and set(g.customers) == {"c_a", "c_b"}


def test_a_new_identifier_beyond_the_limit_is_not_linked() -> None:
    g = IdentityGraph(parse_limits("email=1"))
    g.resolve("e1", 100, [E1, C1], "c_a")
    res = g.resolve("e2", 200, [E2, C1], "c_z")
    assert res.customer_id == "c_a" and res.conflict_types == ("email",) and res.outcomes == ()
    assert E2 not in g.ids


def test_redelivery_replays_the_recorded_outcome() -> None:
    g = IdentityGraph(parse_limits(""))
    g.resolve("e1", 200, [C1], "c_a")
    g.resolve("e2", 100, [C2], "c_b")
    first = g.resolve("e3", 300, [C1, C2], "c_z")
    assert g.resolve("e3", 300, [C1, C2], "c_z") == first
    assert g.resolve("e1", 200, [C1], "c_a").customer_id == "c_b"


def test_a_conflict_without_a_merge_is_replayed_too() -> None:
    g = IdentityGraph(parse_limits("email=1"))
    g.resolve("e1", 100, [E1, C1], "c_a")
    first = g.resolve("e2", 200, [E2, C2, C1], "c_z")  # E2 over the limit: refused, C2 linked
    assert first.conflict_types == ("email",) and first.outcomes == ()
    g.resolve("e3", 300, [E2, C3], "c_e2")  # E2 now belongs to a customer of its own
    # Deciding again would now conflict c_a with c_e2; the redelivery replays what e2 did instead.
    assert g.resolve("e2", 200, [E2, C2, C1], "c_z") == first
