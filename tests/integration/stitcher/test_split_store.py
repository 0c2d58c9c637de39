"""Split and undo in Redis (split.lua, the journey move, journey_split.lua) against the pure model key by
key, on a single Redis and a real cluster; repeated, and resumed after a crash at each step (real Redis, no
Kafka; the live-traffic test is test_split_live.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from services.common.keys import Keys
from services.common.redis_conn import connect, connect_sync
from services.stitcher.adapters.redis_store import RedisStitchStore
from services.stitcher.adapters.split_store import SplitStore
from services.stitcher.core.model import StitchModel
from services.stitcher.settings import parse_limits
from tests.conftest import Infra
from tests.integration.stitcher.test_lua_matches_model import (
    RETENTION_MS,
    model_dump,
    outcome_text_as_resolution,
    prepared,
    redis_dump,
)
from tests.unit.stitcher.events import NOW_MS
from tests.unit.stitcher.split_cases import keys_of, wrong_merge

pytestmark = pytest.mark.integration
LIMITS = parse_limits("")
CAP = 1000


class Crash(RuntimeError):
    pass


class Crashing:
    """A script whose call never reaches Redis: the process died just before it."""

    async def __call__(self, *_: Any) -> Any:
        raise Crash

    async def many(self, *_: Any) -> Any:
        raise Crash


@pytest.fixture(params=["single", "cluster"])
def redis_url(request: pytest.FixtureRequest, infra: Infra) -> Iterator[str]:
    yield infra.redis_url if request.param == "single" else request.getfixturevalue("redis_cluster")


def comparable(dump: dict[str, Any], keys: Keys) -> dict[str, Any]:
    """Without the split records (the model keeps none) and empty values (Redis keeps no empty key)."""
    return {
        k: v for k, v in dump.items() if v not in ({}, [], set()) and not k.startswith(keys.split_record(""))
    }


def check_same(sync: Any, keys: Keys, model: StitchModel) -> None:
    got = redis_dump(sync, keys.prefix)
    outcome_text_as_resolution(got, keys, model)
    got, want = comparable(got, keys), comparable(model_dump(model, keys), keys)
    for key in sorted(set(got) | set(want)):
        assert (key, got.get(key)) == (key, want.get(key))


def run_case(url: str, keys: Keys, order: list[bytes], crash_at: str | None) -> None:
    model = StitchModel(LIMITS, CAP)
    batch = prepared(order)

    async def go() -> tuple[str, str]:
        client = connect(url)
        try:
            store = RedisStitchStore(client, keys, LIMITS, CAP, RETENTION_MS)
            await store.stitch(batch, NOW_MS)
            model.stitch(batch, NOW_MS)
            (cid,) = model.graph.customers
            sep = keys_of("b") & model.graph.customers[cid].ids
            plan = model.plan(cid, sep)
            model.split(plan)
            splits = SplitStore(client, keys, CAP, RETENTION_MS)
            if crash_at is not None:  # a crash after the graph split, or after the new journey was written
                owner, name = (splits, "_rebuild") if crash_at == "rebuild" else (splits.journeys, "_journey")
                real = getattr(owner, name)
                setattr(owner, name, Crashing())
                with pytest.raises(Crash):
                    await splits.split(cid, separate=sep, by="t", now_ms=NOW_MS)
                setattr(owner, name, real)
            rec = await splits.split(cid, separate=sep, by="t", now_ms=NOW_MS)
            assert rec["new_customer"] == plan.new_customer and rec["state"] == "applied"
            again = await splits.split(cid, separate=sep, by="t", now_ms=NOW_MS)  # a repeat changes nothing
            assert again == rec
            return cid, rec["split_id"]
        finally:
            await client.aclose()

    sync = connect_sync(url)
    try:
        cid, sid = asyncio.run(go())
        check_same(sync, keys, model)

        async def undo() -> None:
            client = connect(url)
            try:
                splits = SplitStore(client, keys, CAP, RETENTION_MS)
                rec = await splits.undo(sid, by="t", now_ms=NOW_MS)
                assert rec["state"] == "undone"
                assert (await splits.undo(sid, by="t", now_ms=NOW_MS))["state"] == "undone"
            finally:
                await client.aclose()

        new = model.graph.customers.keys() - {cid}
        asyncio.run(undo())
        model.unsplit(cid, next(iter(new)))
        check_same(sync, keys, model)
    finally:
        for key in sync.scan_iter(match=f"{keys.prefix}:*", count=1000):
            sync.delete(key)
        sync.close()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=wrong_merge())
def test_split_and_undo_match_the_model_on_one_redis(infra: Infra, unique: str, case: tuple) -> None:
    run_case(infra.redis_url, Keys(f"t{unique}"), case[3], None)


@pytest.mark.parametrize("crash_at", [None, "journey", "rebuild"])
def test_split_survives_a_crash_at_each_step_on_either_redis(
    redis_url: str, unique: str, crash_at: str | None
) -> None:
    from tests.unit.stitcher.split_cases import event, pool

    a, b = pool("a"), pool("b")
    order = [
        event("a0", {"email": a["email"], "phone": a["phone"]}, 0, "web", "x"),
        event("b0", {"email": b["email"], "cookie_id": b["cookie_id"]}, 1, "chat", "y"),
        event("b1", {"email": b["email"], "device_id": b["device_id"]}, 2, "phone", None),
        event("bridge", {"email": a["email"], "cookie_id": b["cookie_id"]}, 3, "store", None),
        event("a1", {"email": a["email"]}, 4, "web", "y"),
    ]
    run_case(redis_url, Keys(f"t{unique}{crash_at}"), order, crash_at)


def test_allowed_pair_merges_again_and_a_late_undo_is_harmless(infra: Infra, unique: str) -> None:
    from tests.unit.stitcher.split_cases import event, pool

    a, b = pool("a"), pool("b")
    keys = Keys(f"t{unique}")
    first = prepared(
        [
            event("a0", {"email": a["email"]}, 0, "web", None),
            event("b0", {"email": b["email"], "cookie_id": b["cookie_id"]}, 1, "web", None),
            event("x0", {"email": a["email"], "cookie_id": b["cookie_id"]}, 2, "web", None),
        ]
    )
    again = prepared([event("x1", {"email": a["email"], "cookie_id": b["cookie_id"]}, 3, "web", None)])
    later = prepared([event("x2", {"email": a["email"], "cookie_id": b["cookie_id"]}, 4, "web", None)])

    async def go() -> None:
        client = connect(infra.redis_url)
        try:
            store = RedisStitchStore(client, keys, LIMITS, CAP, RETENTION_MS)
            (*_, last) = await store.stitch(first, NOW_MS)
            cid = last.resolution.customer_id
            splits = SplitStore(client, keys, CAP, RETENTION_MS)
            sep = {i.key for p in first[1:2] for i in p.idents}
            rec = await splits.split(cid, separate=sep, by="t", now_ms=NOW_MS)
            (refused,) = await store.stitch(again, NOW_MS)
            assert [o.limit for o in refused.resolution.outcomes] == ["split"]  # kept apart
            assert await splits.allow(rec["customer"], rec["new_customer"]) == 2
            (merged,) = await store.stitch(later, NOW_MS)
            assert [o.kind for o in merged.resolution.outcomes] == ["merge"]  # allowed: one customer again
            undone = await splits.undo(rec["split_id"], by="t", now_ms=NOW_MS)
            assert undone["state"] == "undone"
            one = await splits.canonical(rec["customer"])
            assert await splits.canonical(rec["new_customer"]) == one
            got = await splits.graph(one)
            assert got is not None and sep <= got[0]
        finally:
            await client.aclose()

    sync = connect_sync(infra.redis_url)
    try:
        asyncio.run(go())
    finally:
        for key in sync.scan_iter(match=f"{keys.prefix}:*", count=1000):
            sync.delete(key)
        sync.close()
