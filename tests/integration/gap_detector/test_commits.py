"""The detector's offsets on a real broker: what its one Kafka loop commits after a batch, and that a batch
whose handling fails (Redis unreachable, a handler raising) is never committed past."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from confluent_kafka import Consumer, TopicPartition

from services.common.kafka_loop import KafkaLoop, Offsets
from services.common.keys import Keys
from services.gap_detector.core.alerts import alert_id
from services.gap_detector.core.definitions import load_definitions
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.settings import GapDetectorSettings
from services.gap_detector.store import DetectorStore
from services.gap_detector.worker import build
from tests.conftest import Infra, Topics
from tests.helpers import free_port
from tests.integration.gap_detector.harness import create_topics, detector_env, produce, stitched
from tests.integration.loop.support import Recording, Running, run_until

pytestmark = pytest.mark.integration

T0 = 1_793_599_980_000
PARTITIONS = 4
PAY = {"type": "purchase", "stage": "payment"}


def events(n: int, prefix: str = "e") -> list[dict[str, Any]]:
    return [stitched(f"{prefix}{i}", f"c_{i + 1:016x}", T0 + i, "web", journey=PAY) for i in range(n)]


def merge(survivor: str, loser: str) -> dict[str, Any]:
    return {
        "schema_version": "1.0",
        "record_id": f"m_{loser}",
        "kind": "merge",
        "survivor": survivor,
        "loser": loser,
        "event_id": "x",
        "recorded_at_ms": T0,
    }


def committed(infra: Infra, group: str, topics: Topics) -> Offsets:
    """The group's committed offsets of both input topics (partitions without one are left out)."""
    c = Consumer({"bootstrap.servers": infra.bootstrap_servers, "group.id": group})
    try:
        tps = [
            TopicPartition(t, p)
            for t in (topics.stitched_events, topics.identity_merges)
            for p in range(PARTITIONS)
        ]
        return {(tp.topic, tp.partition): tp.offset for tp in c.committed(tps, timeout=10) if tp.offset >= 0}
    finally:
        c.close()


@pytest.fixture
def settings(
    service_env: dict[str, str], key_prefix: str, infra: Infra, topics: Topics
) -> GapDetectorSettings:
    create_topics(infra, topics)
    return GapDetectorSettings.model_validate(detector_env(service_env, key_prefix))


@pytest.fixture
def client(settings: GapDetectorSettings, redis_client: Any) -> Iterator[aioredis.Redis]:
    yield aioredis.Redis.from_url(settings.redis_url)


def detector(
    settings: GapDetectorSettings,
    client: aioredis.Redis,
    failing: Callable[[], bool] = lambda: False,
    before_commit: Callable[[Offsets], None] | None = None,
) -> tuple[KafkaLoop, Recording, DetectorMetrics]:
    metrics = DetectorMetrics()
    loop, handler = build(settings, load_definitions(), metrics, client, before_commit=before_commit)
    recording = Recording(handler, failing)
    loop.handler = recording
    return loop, recording, metrics


async def test_committed_offsets_are_the_last_handled_plus_one(
    settings: GapDetectorSettings, client: aioredis.Redis, infra: Infra, topics: Topics, key_prefix: str
) -> None:
    docs = events(40)
    produce(infra, topics.stitched_events, docs)
    produce(
        infra,
        topics.identity_merges,
        [
            merge("c_00000000000000f1", "c_00000000000000f2"),
            merge("c_00000000000000f3", "c_00000000000000f4"),
        ],
        key_field="survivor",
    )
    loop, rec, _ = detector(settings, client)

    def all_committed() -> bool:
        return len(rec.handled) >= 42 and committed(infra, settings.group_id, topics) == rec.last_plus_one()

    await run_until(loop, all_committed, "the handled batches committed")
    want = rec.last_plus_one()
    assert {t for t, _ in want} == {topics.stitched_events, topics.identity_merges}
    assert len({p for t, p in want if t == topics.stitched_events}) > 1  # several partitions, each exact
    assert committed(infra, settings.group_id, topics) == want
    # What was committed was handled: every event armed its stall timer in Redis.
    assert await client.zcard(Keys(key_prefix).timers) == len(docs)
    await client.aclose()


async def test_a_batch_is_not_committed_while_redis_is_unreachable(
    settings: GapDetectorSettings, client: aioredis.Redis, infra: Infra, topics: Topics, key_prefix: str
) -> None:
    # One tick at the start, then none: a tick against a dead Redis would be retried before any batch.
    settings = settings.model_copy(update={"tick": "1h"})
    loop, rec, metrics = detector(settings, client)
    handler = rec.inner
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=1)

    def use(redis: aioredis.Redis) -> None:
        store = DetectorStore(redis, Keys(key_prefix), settings.retention_ms, 100)
        handler.proc.store = handler.store = store

    running = Running(loop)
    try:
        await running.until(lambda: handler.ticks > 0, what="the first tick")
        use(dead)  # Redis goes away (nobody listens on that port), then events arrive
        produce(infra, topics.stitched_events, events(10))
        await running.until(lambda: rec.attempts >= 3, what="three attempts at the batch, Redis down")
        assert rec.handled == [] and committed(infra, settings.group_id, topics) == {}
        assert (metrics.registry.get_sample_value("journeys_retries_total", {"target": "redis"}) or 0) >= 2
        use(client)  # Redis is back: the same batch is handled and only now committed
        await running.until(
            lambda: (
                len(rec.handled) >= 10 and committed(infra, settings.group_id, topics) == rec.last_plus_one()
            ),
            what="the batch handled and committed once Redis is back",
        )
    finally:
        await running.close()
    await dead.aclose()
    await client.aclose()


async def test_a_failing_handler_is_never_committed_and_its_batch_is_retried(
    settings: GapDetectorSettings, client: aioredis.Redis, infra: Infra, topics: Topics
) -> None:
    produce(infra, topics.stitched_events, events(20))
    failing = [True]
    loop, rec, metrics = detector(settings, client, failing=lambda: failing[0])
    while_failing: list[Offsets] = []

    def recovered_and_committed() -> bool:
        if failing[0]:
            while_failing.append(committed(infra, settings.group_id, topics))
            failing[0] = rec.attempts < 3  # the fault clears after three failed attempts
            return False
        return len(rec.handled) >= 20 and committed(infra, settings.group_id, topics) == rec.last_plus_one()

    await run_until(loop, recovered_and_committed, "the batch retried, handled and committed")
    assert while_failing and all(c == {} for c in while_failing)
    assert (metrics.registry.get_sample_value("journeys_retries_total", {"target": "handler"}) or 0) >= 3
    assert sorted(orjson.loads(r.value or b"")["event_id"] for r in rec.handled) == sorted(
        f"e{i}" for i in range(20)
    )  # the same records, each handled once it worked
    await client.aclose()


class Crash(Exception):
    """Stands for the process dying between its Redis writes and its offset commit."""


async def redis_snapshot(client: aioredis.Redis, keys: Keys, cids: list[str]) -> dict[str, Any]:
    return {
        "timers": await client.zrange(keys.timers, 0, -1, withscores=True),
        "alerts": sorted(await client.hkeys(keys.alerts_by_id)),
        "recent": await client.zcard(keys.recent_alerts),
        "open": {c: sorted(await client.hkeys(keys.open_alerts(c))) for c in cids},
        "state": {c: await client.hgetall(keys.detector_state(c)) for c in cids},
    }


async def test_a_crash_before_the_commit_replays_the_batch_without_duplicates(
    settings: GapDetectorSettings, client: aioredis.Redis, infra: Infra, topics: Topics, key_prefix: str
) -> None:
    # Each customer: a web contact then a phone call on the same intent (a channel switch), on a journey
    # stage with an SLA (a stall timer).
    cids = [f"c_{i + 1:016x}" for i in range(12)]
    docs = [stitched(f"w{i}", c, T0, "web", intent="billing", journey=PAY) for i, c in enumerate(cids)]
    docs += [
        stitched(f"p{i}", c, T0 + 60_000, "phone", intent="billing", journey=PAY) for i, c in enumerate(cids)
    ]
    produce(infra, topics.stitched_events, docs)
    keys = Keys(key_prefix)

    def crash(offsets: Offsets) -> None:
        raise Crash(offsets)

    first, rec, _ = detector(settings, client, before_commit=crash)
    with pytest.raises(Crash):
        await asyncio.wait_for(first.run(asyncio.Event()), 60)
    assert committed(infra, settings.group_id, topics) == {}
    written = await redis_snapshot(client, keys, cids)
    assert rec.handled and written["alerts"]  # the crashed batch's writes are in Redis

    second, rec2, _ = detector(settings, client)
    await run_until(
        second,
        lambda: (
            len(rec2.handled) >= len(docs)
            and committed(infra, settings.group_id, topics) == rec2.last_plus_one()
        ),
        what="every record handled and committed by the second worker",
    )
    assert {r.offset for r in rec.handled} <= {r.offset for r in rec2.handled}  # the batch came again
    after = await redis_snapshot(client, keys, cids)
    # Exactly what one clean pass writes: one timer and one channel_switch per customer, nothing twice.
    assert after["timers"] == sorted((f"{c}|purchase".encode(), float(T0 + 60_000 + 3_600_000)) for c in cids)
    want = sorted(alert_id("channel_switch", c, f"p{i}").encode() for i, c in enumerate(cids))
    assert after["alerts"] == want and after["recent"] == len(cids)
    assert after["open"] == {
        c: [a]
        for c, a in zip(
            cids, [alert_id("channel_switch", c, f"p{i}").encode() for i, c in enumerate(cids)], strict=True
        )
    }
    for i, c in enumerate(cids):
        assert [e[1] for e in orjson.loads(after["state"][c][b"buf"])] == [f"w{i}", f"p{i}"]
    if len(rec.handled) == len(docs):  # the crashed batch held everything: its replay changed nothing
        assert after == written
    await client.aclose()
