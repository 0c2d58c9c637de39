"""The generated population: deterministic, valid per contract, realistic identifiers, honest noise."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from functools import cache
from typing import Any

import orjson
import phonenumbers
import pytest

from services.common import contracts
from services.common.timeutil import parse_rfc3339_ms
from services.gap_detector.core.definitions import load_definitions
from services.simulator import linking
from services.simulator.generator import Population, SimConfig, generate
from services.simulator.identities import JUNK
from services.simulator.personas import PERSONAS
from services.simulator.truth import build_truth, dump

pytestmark = pytest.mark.unit

CFG = SimConfig(customers=250, seed=7)
# docs/ARCHITECTURE.md "Merge protection" defaults.
LIMITS = {
    "customer_id": 1,
    "account_id": 2,
    "email": 5,
    "phone": 5,
    "device_id": 20,
    "cookie_id": 20,
    "loyalty_id": 2,
    "social_handle": 5,
}
EMAIL = re.compile(r"^[a-z0-9._]+@[a-z0-9.-]+\.[a-z]{2,}$")


@cache
def population(cfg: SimConfig = CFG) -> tuple[Population, dict[str, Any]]:
    defs = load_definitions()
    pop = generate(cfg, defs)
    return pop, build_truth(pop, cfg, defs)


def _bytes(cfg: SimConfig) -> bytes:
    defs = load_definitions()
    pop = generate(cfg, defs)
    return b"\n".join(r.line() for r in pop.records) + dump(build_truth(pop, cfg, defs))


def test_same_seed_gives_the_same_bytes() -> None:
    cfg = SimConfig(customers=60, seed=11)
    assert _bytes(cfg) == _bytes(cfg)


def test_another_seed_gives_another_population() -> None:
    assert _bytes(SimConfig(customers=60, seed=11)) != _bytes(SimConfig(customers=60, seed=12))


def test_every_event_is_a_valid_channel_event() -> None:
    pop, _ = population()
    for rec in pop.records:
        if rec.value is not None:
            assert contracts.first_error(contracts.CHANNEL_EVENT, rec.value) is None, rec.value


def test_malformed_records_are_really_malformed_and_not_in_the_truth() -> None:
    pop, truth = population()
    bad = [r for r in pop.records if r.raw is not None]
    assert len(bad) >= 10
    truth_ids = {e for c in truth["customers"].values() for e in c["events"]}
    for rec in bad:
        try:
            doc = orjson.loads(rec.raw or "")
        except orjson.JSONDecodeError:
            continue
        assert contracts.first_error(contracts.CHANNEL_EVENT, doc) is not None, rec.raw
        assert doc["event_id"] not in truth_ids


def test_duplicates_repeat_the_same_event_within_the_lateness() -> None:
    pop, truth = population()
    by_id: dict[str, list[Any]] = defaultdict(list)
    for rec in pop.records:
        if rec.value is not None:
            by_id[rec.value["event_id"]].append(rec)
    dups = {k: v for k, v in by_id.items() if len(v) > 1}
    assert len(dups) == truth["counts"]["duplicates"] > 0
    for recs in dups.values():
        assert len({r.payload() for r in recs}) == 1


def test_out_of_order_displacement_stays_below_the_lateness() -> None:
    pop, _ = population()
    late = 0
    for rec in pop.records:
        if rec.value is not None:
            delay = rec.arrival_ms - parse_rfc3339_ms(rec.value["occurred_at"])
            assert 0 <= delay < CFG.lateness_ms
            late += delay >= 30_000
    assert late > 0
    arrivals = [r.arrival_ms for r in pop.records]
    assert arrivals == sorted(arrivals)


def test_simulated_time_stays_inside_the_span() -> None:
    pop, _ = population()
    times = [parse_rfc3339_ms(e["occurred_at"]) for evs in pop.events.values() for e in evs]
    assert CFG.start_ms <= min(times) and max(times) <= CFG.start_ms + CFG.span_ms


def test_identifiers_look_real_and_phones_parse() -> None:
    _, truth = population()
    for info in truth["customers"].values():
        for email in info["identifiers"].get("email", []):
            assert EMAIL.match(email), email
        for phone in info["identifiers"].get("phone", []):
            assert phonenumbers.is_valid_number(phonenumbers.parse(phone)), phone


def test_no_real_identifier_is_shared_and_limits_hold() -> None:
    _, truth = population()
    owner: dict[str, str] = {}
    for cust, info in truth["customers"].items():
        for id_type, values in info["identifiers"].items():
            assert len(values) <= LIMITS[id_type], (cust, id_type)
            for v in values:
                key = linking.canon(id_type, v)
                assert key is not None
                assert owner.setdefault(key, cust) == cust, f"{v} shared by {owner[key]} and {cust}"


def test_junk_identifiers_are_shared_between_strangers() -> None:
    pop, _ = population()
    junk_users: dict[tuple[str, str], set[str]] = defaultdict(set)
    junk = {(t, v) for t, vs in JUNK.items() for v in vs}
    for cust, evs in pop.events.items():
        for ev in evs:
            for t, v in ev["identifiers"].items():
                if (t, v) in junk:
                    junk_users[(t, v)].add(cust)
            assert linking.id_keys(ev), "every event keeps a usable identifier"
    assert any(len(users) > 1 for users in junk_users.values())


def test_each_customer_identity_graph_is_connected() -> None:
    pop, _ = population()
    for cust, evs in pop.events.items():
        assert len(linking.components(evs)) == 1, cust


def test_there_are_merges_and_at_least_six_personas() -> None:
    _, truth = population()
    assert len(truth["merges"]) > 10
    used = Counter(c["persona"] for c in truth["customers"].values())
    assert len(used) >= 6 and len(PERSONAS) >= 6


def test_event_ids_and_device_identifiers_per_event() -> None:
    pop, _ = population()
    for evs in pop.events.values():
        for ev in evs:
            ids = ev["identifiers"]
            assert not ("device_id" in ids and "cookie_id" in ids)  # the oracle's device_key relies on it
    ids = [e["event_id"] for evs in pop.events.values() for e in evs]
    assert len(ids) == len(set(ids))


def test_rules_never_depend_on_a_link_the_stitcher_has_not_seen_yet() -> None:
    """In arrival order, every event a per-key rule or a stall reads is already linked to its customer's
    account, and both ends of every expected device switch are linked: the oracle's final view and an
    online detector can agree."""
    pop, truth = population()
    owner = {e: c for c, info in truth["customers"].items() for e in info["events"]}
    accounts = {
        c: linking.canon("account_id", info["identifiers"]["account_id"][0])
        for c, info in truth["customers"].items()
    }
    uf = linking.UnionFind()
    arrived: set[str] = set()
    for rec in pop.records:
        if rec.value is None or rec.value["event_id"] in arrived:
            continue
        ev = rec.value
        arrived.add(ev["event_id"])
        keys = linking.id_keys(ev)
        for k in keys[1:]:
            uf.union(keys[0], k)
        if ev.get("journey") or ev.get("intent") or ev.get("department"):
            assert uf.find(keys[0]) == uf.find(accounts[owner[ev["event_id"]]] or ""), ev
    by_id = {e["event_id"]: e for evs in pop.events.values() for e in evs}
    for a in truth["alerts"]:
        if a["type"] == "device_switch":
            p, e = (linking.id_keys(by_id[i])[0] for i in a["event_ids"])
            assert uf.find(p) == uf.find(e)


def test_one_key_per_customer() -> None:
    pop, truth = population()
    owner = {e: c for c, info in truth["customers"].items() for e in info["events"]}
    keys: dict[str, set[str]] = defaultdict(set)
    for rec in pop.records:
        if rec.value is not None:
            keys[owner[rec.value["event_id"]]].add(rec.key)
    assert all(len(k) == 1 for k in keys.values())
    assert len({next(iter(k)) for k in keys.values()}) == len(keys)


def test_junk_values_are_junk_for_the_stitcher() -> None:
    # The simulator's junk must be what the stitcher ignores, or strangers really would merge.
    from services.stitcher.core.identifiers import is_junk, normalise

    for id_type, values in JUNK.items():
        for raw in values:
            value = normalise(id_type, raw, phone_region="GB")
            assert value is None or is_junk(id_type, value), (id_type, raw)


def test_journeys_end_in_a_good_terminal_on_success_and_a_bad_one_on_giving_up() -> None:
    pop, _ = population()
    defs = load_definitions()
    ends: Counter[tuple[str, str]] = Counter()
    for evs in pop.events.values():
        for ev in evs:
            j = ev.get("journey")
            if j and defs.is_terminal(j["type"], j["stage"]):
                ends[(j["stage"], ev["outcome"])] += 1
    assert ends[("converted", "success")] > 0 and ends[("resolved", "success")] > 0
    assert sum(n for (stage, outcome), n in ends.items() if outcome == "abandoned") > 0
    assert not [k for k in ends if k[1] == "success" and k[0] not in ("converted", "resolved")]


def test_every_channel_of_the_contract_is_used() -> None:
    pop, _ = population()
    used = {e["channel"] for evs in pop.events.values() for e in evs}
    # Channels are open; the contract's examples are the ones the gap rules know.
    assert used == set(contracts.load_schema(contracts.CHANNEL_EVENT)["properties"]["channel"]["examples"])
