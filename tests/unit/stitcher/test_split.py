"""Split (unmerge) as pure rules: merge then split gives back the two original journeys exactly, in any
event order; the split is undone exactly; the two stay apart until an admin allows; evidence explains."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from services.stitcher.core.identity import SPLIT_BLOCK, Evidence
from services.stitcher.core.split import SplitRefused, plan_split, separated_by_merge
from services.stitcher.core.why import explain
from services.stitcher.settings import parse_limits
from tests.unit.stitcher.events import NOW_MS
from tests.unit.stitcher.split_cases import (
    event,
    journey_view,
    keys_of,
    pool,
    stitched,
    wrong_merge,
)

pytestmark = pytest.mark.unit
LIMITS = parse_limits("")


def only_customer(model: object) -> str:
    (cid,) = model.graph.customers  # type: ignore[attr-defined]
    return str(cid)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wrong_merge())
def test_merge_then_split_gives_back_the_two_original_journeys(case: tuple) -> None:
    a, b, bridge, order = case
    model = stitched(order, LIMITS)
    cid = only_customer(model)  # the bridge made one customer of the two, in whatever order it came
    ids = model.graph.customers[cid].ids
    plan = model.model.plan(cid, keys_of("b") & ids)
    model.model.split(plan)

    # The originals: each person stitched alone (the bridge, whose strongest identifier is A's e-mail,
    # with A).
    alone_a, alone_b = stitched([*a, bridge], LIMITS), stitched(b, LIMITS)
    by_person = {}
    for c, cust in model.graph.customers.items():
        by_person["a" if cust.ids & keys_of("a") else "b"] = c
    assert journey_view(model, by_person["a"]) == journey_view(alone_a, only_customer(alone_a))
    assert journey_view(model, by_person["b"]) == journey_view(alone_b, only_customer(alone_b))
    # Identifiers: B's (the cookie the bridge linked included) went; the masks went with them.
    assert model.graph.partition() == {frozenset(ids - keys_of("b")), frozenset(ids & keys_of("b"))}
    assert set(model.store.journeys[by_person["b"]].masked) == ids & keys_of("b")
    for c, cust in model.graph.customers.items():
        assert all(model.graph.ids[k] == c for k in cust.ids)
        assert all(set(e.named()) & cust.ids for e in model.graph.evidence[c].values())
    # The customer id stays with the identifier it was minted from.
    assert cid in model.graph.customers


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wrong_merge())
def test_a_split_is_undone_exactly(case: tuple) -> None:
    _, _, _, order = case
    model = stitched(order, LIMITS)
    cid = only_customer(model)
    before = (
        journey_view(model, cid),
        dict(model.store.journeys[cid].masked),
        model.graph.partition(),
        {e: v.text() for e, v in model.graph.evidence[cid].items()},
    )
    plan = model.model.plan(cid, keys_of("b") & model.graph.customers[cid].ids)
    model.model.split(plan)
    model.model.unsplit(cid, plan.new_customer)
    assert only_customer(model) == cid
    after = (
        journey_view(model, cid),
        dict(model.store.journeys[cid].masked),
        model.graph.partition(),
        {e: v.text() for e, v in model.graph.evidence[cid].items()},
    )
    assert after == before
    assert model.graph.canonical(plan.new_customer) == cid and not model.graph.blocked


def test_the_separated_stay_apart_until_an_admin_allows() -> None:
    a = event("a0", {"email": pool("a")["email"]}, 0, "web", None)
    b = event("b0", {"email": pool("b")["email"], "phone": pool("b")["phone"]}, 1, "web", None)
    both = event("x0", {"email": pool("a")["email"], "phone": pool("b")["phone"]}, 2, "web", None)
    model = stitched([a, b, both], LIMITS)
    cid = only_customer(model)
    plan = model.model.plan(cid, keys_of("b") & model.graph.customers[cid].ids)
    model.model.split(plan)
    again = event("x1", {"email": pool("a")["email"], "phone": pool("b")["phone"]}, 3, "web", None)
    model.process([again], NOW_MS)
    assert len(model.graph.customers) == 2
    assert model.merges[-1].kind == "conflict" and model.merges[-1].limit == SPLIT_BLOCK
    model.graph.blocked.clear()  # what SplitStore.allow does
    model.process(
        [event("x2", {"email": pool("a")["email"], "phone": pool("b")["phone"]}, 4, "web", None)], NOW_MS
    )
    assert len(model.graph.customers) == 1


def test_evidence_says_which_event_linked_and_merged() -> None:
    a = event("a0", {"email": pool("a")["email"]}, 0, "web", None)
    b = event("b0", {"email": pool("b")["email"]}, 1, "web", None)
    link = event("a1", {"email": pool("a")["email"], "cookie_id": pool("a")["cookie_id"]}, 2, "web", None)
    same = event("a2", {"email": pool("a")["email"], "cookie_id": pool("a")["cookie_id"]}, 3, "web", None)
    merge = event("x0", {"email": pool("b")["email"], "cookie_id": pool("a")["cookie_id"]}, 4, "web", None)
    model = stitched([a, b, link, same, merge], LIMITS)
    cid = only_customer(model)
    why = model.graph.evidence[cid]
    assert set(why) == {"a0", "b0", "a1", "x0"}  # the returning event a2 linked nothing: no entry
    email_a, email_b, cookie = (
        model.hasher.usable({t: pool(p)[t]})[0].key
        for p, t in (("a", "email"), ("b", "email"), ("a", "cookie_id"))
    )
    assert why["a0"] == Evidence("mint", why["a0"].occurred_ms, NOW_MS, (), (email_a,))
    assert (why["a1"].rule, why["a1"].via, why["a1"].linked) == ("link", (email_a,), (cookie,))
    assert why["x0"].rule == "merge" and set(why["x0"].via) == {email_b, cookie}
    assert len(why["x0"].merged) == 1
    assert Evidence.parse(why["x0"].text()) == why["x0"]
    # The merge record names the event and the loser: that is enough to undo it.
    (rec,) = [m for m in model.merges if m.kind == "merge"]
    sep = separated_by_merge(cid, model.graph.customers[cid].ids, why, rec.event_id, rec.loser)
    assert sep == {email_b} or sep == {email_a, cookie}


def test_a_split_names_what_it_refuses() -> None:
    first = event("a0", {"email": pool("a")["email"], "phone": pool("a")["phone"]}, 0, "web", None)
    model = stitched([first], LIMITS)
    cid = only_customer(model)
    ids = model.graph.customers[cid].ids
    with pytest.raises(SplitRefused, match="nothing would be left"):
        plan_split(cid, set(ids), model.graph.evidence[cid], set(ids), 0)
    with pytest.raises(SplitRefused, match="not part"):
        plan_split(cid, set(ids), model.graph.evidence[cid], keys_of("b"), 0)
    with pytest.raises(SplitRefused, match="no merge"):
        separated_by_merge(cid, set(ids), model.graph.evidence[cid], "a0", "c_x")


def test_an_identifier_attached_only_through_the_separated_ones_leaves_with_them() -> None:
    p, q = pool("a"), pool("b")
    events = [
        event("a0", {"email": p["email"]}, 0, "web", None),
        event("b0", {"email": p["email"], "cookie_id": q["cookie_id"]}, 1, "web", None),  # shared
        event("b1", {"cookie_id": q["cookie_id"], "phone": q["phone"]}, 2, "web", None),
    ]
    model = stitched(events, LIMITS)
    cid = only_customer(model)
    plan = model.model.plan(cid, {model.hasher.usable({"cookie_id": q["cookie_id"]})[0].key})
    assert set(plan.move) == keys_of("b") & model.graph.customers[cid].ids  # the phone came via the cookie
    model.model.split(plan)
    # b0 carries both: it goes with its strongest identifier, A's e-mail.
    assert set(model.store.journeys[plan.new_customer].timeline) == {"b1"}
    assert set(model.store.journeys[cid].timeline) == {"a0", "b0"}


def test_why_is_the_chain_of_links_from_the_anchor() -> None:
    a = event("a0", {"email": pool("a")["email"]}, 0, "web", None)
    b = event("b0", {"email": pool("b")["email"]}, 1, "web", None)
    link = event("a1", {"email": pool("a")["email"], "cookie_id": pool("a")["cookie_id"]}, 2, "web", None)
    merge = event("x0", {"email": pool("b")["email"], "cookie_id": pool("a")["cookie_id"]}, 4, "web", None)
    model = stitched([a, b, link, merge], LIMITS)
    cid = only_customer(model)
    ids, why = model.graph.customers[cid].ids, model.graph.evidence[cid]
    email_a, email_b = (model.hasher.usable({"email": pool(p)["email"]})[0].key for p in "ab")
    assert [e for e, _ in explain(cid, ids, why, email_b)] == ["a1", "x0"]  # A's e-mail -> cookie -> B's
    assert [e for e, _ in explain(cid, ids, why, email_a)] == ["a0"]  # the anchor: the event that minted it
    assert explain(cid, ids, why, "email:unknown") == []


def test_split_records_read_as_1x_detectors_read_them() -> None:
    """The detector folds kind=merge records and ignores conflicts (services/gap_detector/processor.py
    on_merges): a split is a conflict it leaves alone, its undo a merge it folds, and both are valid 1.2."""
    from services.common.contracts import IDENTITY_MERGE, first_error
    from services.common.record_codec import decode_merge
    from services.stitcher.core.split import split_merge_record

    rec = {
        "split_id": "s_0123456789abcdef",
        "customer": "c_1111111111111111",
        "new_customer": "c_2222222222222222",
        "identifier_types": ["cookie_id", "email"],
        "generation": 1,
        "by": "ops",
        "undone_by": "lead",
    }
    split, undo = split_merge_record(rec, "split", NOW_MS), split_merge_record(rec, "undo", NOW_MS)
    assert first_error(IDENTITY_MERGE, split) is None and first_error(IDENTITY_MERGE, undo) is None
    read_split, read_undo = (decode_merge(orjson.dumps(r)) for r in (split, undo))
    assert (read_split.kind, read_split.limit, read_split.split["action"]) == ("conflict", "split", "split")
    assert (read_undo.kind, read_undo.survivor, read_undo.loser) == (
        "merge",
        rec["customer"],
        rec["new_customer"],
    )
    assert split["record_id"] != undo["record_id"]
    again = split_merge_record({**rec, "generation": 2}, "split", NOW_MS)  # split again after an undo
    assert again["record_id"] != split["record_id"]
