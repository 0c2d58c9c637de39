"""The detector on Redis Cluster: every one of its scripts runs there (a script touching keys of two hash
slots is refused by the server: they are `#!lua` scripts), and a simulated population with merges, a
failed publish swept from the outbox, stalls and drop-off minutes gives exactly the alerts it gives on a
single Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.keys import Keys
from services.common.progress import InputProgress
from services.common.redis_conn import connect, connect_sync
from services.common.scripts import Script
from services.stitcher.adapters.progress_store import ProgressStore
from tests.conftest import Infra
from tests.integration.gap_detector.processors import Proc, population, run

pytestmark = pytest.mark.integration

LUA = Path(__file__).resolve().parents[3] / "services" / "gap_detector" / "lua"


def test_every_detector_script_declares_itself_for_the_cluster_check() -> None:
    # Redis 7 holds a script to the slot of its keys only when it has a shebang (else legacy mode lets a
    # cross-slot script through on one node): every detector script has one, so the tests below would see.
    scripts = sorted(LUA.glob("*.lua"))
    assert [p.name for p in scripts if not p.read_text().startswith("#!lua\n")] == []
    assert len(scripts) == 8


async def test_a_population_gives_the_same_alerts_on_the_cluster_as_on_one_redis(
    infra: Infra, redis_cluster: str, key_prefix: str
) -> None:
    steps, newest = population(400, seed=11)
    assert sum(1 for kind, _ in steps if kind == "merge") >= 20
    got = {}
    for name, url in (("single", infra.redis_url), ("cluster", redis_cluster)):
        proc = Proc(url, f"{key_prefix}{name}")
        calls = proc.count_scripts()
        try:
            await run(proc, steps, newest, batch=1000)  # ~400 customers a batch: more than 100 calls a node
            got[name] = proc.final()
            assert proc.metrics.registry.get_sample_value("journeys_alerts_resent_total")
            assert len(calls) == 6, calls  # and the clock's two scripts run on every tick
            assert await proc.client.zcard(proc.keys.alerts_outbox) == 0
        finally:
            await proc.close()
            sync = connect_sync(url)
            for key in sync.scan_iter(match=f"{key_prefix}{name}:*", count=1000):
                sync.delete(key)
            sync.close()
    kinds = {v[0] for v in got["single"].values()}
    assert {"channel_switch", "stall", "repeat_contact", "dropoff_spike"} <= kinds
    assert got["cluster"] == got["single"]


async def test_the_stitchers_evidence_script_runs_strict_on_the_cluster(
    redis_cluster: str, key_prefix: str
) -> None:
    """progress.lua, the stitcher's report the detectors' clock reads, merged where it is stored."""
    assert Script.strict  # the test suite's setting: the server holds the script to its key's slot
    client, keys = connect(redis_cluster), Keys(key_prefix)
    store = ProgressStore(client, keys)
    try:
        await store.publish(6, {0: InputProgress(100, 200, 150), 1: InputProgress(50, 60, 55)})
        await store.publish(None, {0: InputProgress(90, 300, 95)})  # an old owner's late write
        got = await client.hgetall(keys.clock_inputs)
        assert got == {b"n": b"6", b"0": b"100:300:150", b"1": b"50:60:55"}
    finally:
        await client.delete(keys.clock_inputs)
        await client.aclose()
