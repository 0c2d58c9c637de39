"""The stitcher's Redis store (identity.lua, journey.lua, the fold steps) and the pure model (StitchModel:
identity graph + journey store) agree, key by key, on random
batches with merges, conflicts, redeliveries, duplicates and caps (real Redis, no Kafka)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.keys import Keys
from services.stitcher.adapters.redis_store import TTL_SLACK_DIVISOR, RedisStitchStore, resolution_of
from services.stitcher.core.batch import Prepared, bare_record, prepare
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.hashed_identifiers import IdentifierHasher
from services.stitcher.core.journey import WRITTEN, Stitched
from services.stitcher.core.model import StitchModel
from services.stitcher.settings import parse_limits
from tests.conftest import Infra
from tests.unit.stitcher.events import NOW_MS, channel_event, person_ids

pytestmark = pytest.mark.integration

HASHER = IdentifierHasher(b"k", "GB")
RETENTION_MS = 3_600_000


def prepared(values: Sequence[bytes]) -> list[Prepared]:
    split = prepare([bare_record(v) for v in values], HASHER, NOW_MS, DecodePolicy())
    return split.ready


def random_events(rng: random.Random, n: int, people: int) -> list[bytes]:
    out = []
    for i in range(n):
        pool = person_ids(rng.randrange(people))
        picks = dict(rng.sample(pool, rng.randint(1, 3)))
        if rng.random() < 0.05:
            picks["device_id"] = f"shared-kiosk-{rng.randint(0, 1)}"  # links different people
        event: dict[str, Any] = {
            "event_id": f"e{i}",
            "occurred_at": f"2026-11-02T0{rng.randint(0, 9)}:00:00Z",
            "channel": rng.choice(["web", "phone", "chat"]),
            "touchpoint": "t",
            "identifiers": picks,
            "direction": rng.choice(["inbound", "outbound"]),
            "department": rng.choice(["a", "b"]),
        }
        if rng.random() < 0.5:
            event["journey"] = {"type": "buy", "stage": rng.choice(["x", "y"])}
        if rng.random() < 0.3:
            event["nps"] = rng.randint(0, 10)
        out.append(orjson.dumps(event))
    return out + [out[j] for j in rng.sample(range(n), n // 5)]  # redeliveries


def redis_dump(client: Any, prefix: str) -> dict[str, Any]:
    """Every key of the prefix with its value (created_ms of customers left out: the model has no clock)."""
    out: dict[str, Any] = {}
    for raw in client.scan_iter(match=f"{prefix}:*", count=1000):
        key = raw.decode()
        kind = client.type(raw).decode()
        if kind == "string":
            out[key] = client.get(raw).decode()
        elif kind == "set":
            out[key] = {m.decode() for m in client.smembers(raw)}
        elif kind == "zset":
            out[key] = [(m.decode(), int(s)) for m, s in client.zrange(raw, 0, -1, withscores=True)]
        else:
            h = {f.decode(): v.decode() for f, v in client.hgetall(raw).items()}
            if ":cust:" in key:
                assert h.pop("created_ms") == str(NOW_MS)
            out[key] = h
    return out


def model_dump(model: StitchModel, keys: Keys) -> dict[str, Any]:
    """The same picture from the model: what the Redis keys must hold."""
    g, out = model.graph, dict[str, Any]()
    for k, cid in g.ids.items():
        out[keys.identifier(k)] = cid
    for cid, c in g.customers.items():
        h = {"first_seen_ms": str(c.first_seen_ms)}
        for t in {k.split(":", 1)[0] for k in c.ids}:
            h["n:" + t] = str(c.count(t))
        out[keys.customer(cid)] = h
        if c.ids:
            out[keys.customer_ids(cid)] = set(c.ids)
    for loser, survivor in g.alias.items():
        out[keys.alias(loser)] = survivor
    for survivor, losers in g.aliases_of.items():
        out[keys.aliases_of(survivor)] = set(losers)
    for eid, res in g.recorded.items():
        out[keys.merge_outcome(eid)] = res
    for cid, why in g.evidence.items():
        if why:
            out[keys.evidence(cid)] = {eid: e.text() for eid, e in why.items()}
    for cid, others in g.blocked.items():
        if others:
            out[keys.blocked(cid)] = set(others)
    for cid, j in model.journeys.journeys.items():
        out[keys.timeline(cid)] = sorted(j.timeline.items(), key=lambda kv: (kv[1], kv[0]))
        out[keys.touchpoints(cid)] = {e: tp.decode() for e, tp in j.touchpoints.items()}
        out[keys.summary(cid)] = j.summary
        out[keys.masked(cid)] = j.masked
    return out


def outcome_text_as_resolution(dump: dict[str, Any], keys: Keys, model: StitchModel) -> None:
    """Merge-outcome keys hold JSON; read them as the model's Resolution for the comparison."""
    for eid in model.graph.recorded:
        key = keys.merge_outcome(eid)
        if isinstance(dump.get(key), str):
            dump[key] = resolution_of(orjson.loads(dump[key]))


def same(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Key by key, so a failure names the key and shows both values in full."""
    for key in sorted(set(got) | set(want)):
        assert (key, got.get(key)) == (key, want.get(key))


async def run_store(
    url: str, keys: Keys, limits: dict[str, int], cap: int, batches: Sequence[Sequence[Prepared]]
) -> list[list[Stitched]]:
    client = aioredis.Redis.from_url(url)
    try:
        store = RedisStitchStore(client, keys, limits, cap, RETENTION_MS)
        return [await store.stitch(b, NOW_MS) for b in batches]
    finally:
        await client.aclose()


def check(
    infra: Infra,
    sync: Any,
    prefix: str,
    limits: dict[str, int],
    cap: int,
    batches: Sequence[Sequence[Prepared]],
) -> StitchModel:
    """Run the batches through Redis and the model, then redeliver the last batch; all must agree."""
    keys, model = Keys(prefix), StitchModel(limits, cap)
    try:
        got = asyncio.run(run_store(infra.redis_url, keys, limits, cap, batches))
        assert got == [model.stitch(b, NOW_MS) for b in batches]
        before = redis_dump(sync, prefix)
        outcome_text_as_resolution(before, keys, model)
        same(before, model_dump(model, keys))

        # A whole batch again (a worker that died before its commit): same customers, same merge records
        # replayed, no touchpoint twice, not one key changed.
        (again,) = asyncio.run(run_store(infra.redis_url, keys, limits, cap, batches[-1:]))
        first = got[-1]
        assert again == model.stitch(batches[-1], NOW_MS)
        assert [s.resolution.customer_id for s in again] == [
            model.graph.canonical(s.resolution.customer_id) for s in first
        ]
        assert [s.resolution.outcomes for s in again] == [s.resolution.outcomes for s in first]
        assert WRITTEN not in [s.status for s in again]
        after = redis_dump(sync, prefix)
        outcome_text_as_resolution(after, keys, model)
        same(after, before)

        for cid in model.journeys.journeys:
            for key in (keys.timeline(cid), keys.touchpoints(cid), keys.summary(cid), keys.masked(cid)):
                ttl = sync.pttl(key)
                assert RETENTION_MS - 60_000 < ttl <= RETENTION_MS + RETENTION_MS // TTL_SLACK_DIVISOR, key
        # Every customer here is live, so its whole identity graph is kept at least as long as its journey,
        # one slack longer (an identifier expiring before its journey would split the customer); merge
        # outcomes keep theirs.
        slack = RETENTION_MS // TTL_SLACK_DIVISOR
        for raw in sync.scan_iter(match=f"{keys.idg}:*", count=1000):
            key = raw.decode()
            if key.startswith(keys.merge_outcome("")):
                continue
            ttl = sync.pttl(key)
            assert RETENTION_MS + slack - 60_000 < ttl <= RETENTION_MS + 2 * slack, key
        return model
    finally:
        for key in sync.scan_iter(match=f"{prefix}:*", count=1000):
            sync.delete(key)


def split_into(items: list[Prepared], sizes: list[int]) -> list[list[Prepared]]:
    out, at = [], 0
    for size in sizes:
        if at >= len(items):
            break
        out.append(items[at : at + size])
        at += size
    if at < len(items):
        out.append(items[at:])
    return out


@pytest.mark.parametrize(
    ("seed", "limits", "cap"), [(1, "", 1000), (2, "account_id=1,email=1", 4), (3, "", 3)]
)
def test_lua_agrees_with_the_model(infra: Infra, key_prefix: str, seed: int, limits: str, cap: int) -> None:
    rng = random.Random(seed)
    items = prepared(random_events(rng, 200, 12))
    sync = redis.Redis.from_url(infra.redis_url)
    model = check(
        infra,
        sync,
        key_prefix,
        parse_limits(limits),
        cap,
        split_into(items, [rng.randint(1, 40) for _ in range(40)]),
    )
    assert model.graph.alias, "the event set should contain merges"
    outcomes = [o for r in model.graph.recorded.values() for o in r.outcomes]
    assert limits == "" or any(o.kind == "conflict" for o in outcomes), "and conflicts"
    assert cap > 100 or any(j.summary.get("truncated") for j in model.journeys.journeys.values()), "and caps"
    sync.close()


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[bytes], list[int], str, int]:
    people = draw(st.integers(1, 5))
    events = [draw(channel_event(i, people)) for i in range(draw(st.integers(1, 30)))]
    for e in events:
        if draw(st.integers(0, 9)) == 0:
            e["identifiers"]["device_id"] = "kiosk"  # one device shared by different people
    values = [orjson.dumps(e) for e in events]
    dups = draw(st.lists(st.sampled_from(values), max_size=len(values)))
    arrival = draw(st.permutations(values + dups))
    sizes = draw(st.lists(st.integers(1, 12), min_size=1, max_size=12))
    limits = draw(st.sampled_from(["", "email=1,phone=1", "cookie_id=1,device_id=1", "email=2,account_id=1"]))
    return arrival, sizes, limits, draw(st.sampled_from([1, 2, 3, 1000]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario())
def test_lua_agrees_with_the_model_on_any_batches(
    infra: Infra, key_prefix: str, case: tuple[list[bytes], list[int], str, int]
) -> None:
    values, sizes, limits, cap = case
    sync = redis.Redis.from_url(infra.redis_url)
    try:
        check(infra, sync, key_prefix, parse_limits(limits), cap, split_into(prepared(values), sizes))
    finally:
        sync.close()
