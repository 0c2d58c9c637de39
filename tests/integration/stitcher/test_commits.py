"""The stitcher's offsets on a real broker: what its one Kafka loop commits after a batch, and that a batch
whose handling fails is never committed past (the worker in this process; the SIGKILL case is in
test_worker.py, on a real process)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from services.common.kafka_loop import KafkaLoop, Outbox, Record
from services.common.timeutil import now_ms
from services.stitcher.metrics import StitcherMetrics
from services.stitcher.settings import StitcherSettings
from services.stitcher.worker import StitchHandler, build
from tests.conftest import Infra, Topics
from tests.integration.stitcher.support import committed, create_topics, event, produce, worker_env

pytestmark = pytest.mark.integration


class Recording:
    """Wraps the stitcher's handler: remembers every batch it handled, may fail before handling."""

    def __init__(self, inner: StitchHandler, failing: Callable[[], bool] = lambda: False) -> None:
        self.inner, self.failing = inner, failing
        self.handled: list[Record] = []
        self.attempts = 0

    async def handle(self, records: list[Record], out: Outbox) -> None:
        self.attempts += 1
        if self.failing():
            raise RuntimeError("handler failed")
        await self.inner.handle(records, out)
        self.handled += records

    def last_plus_one(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for r in self.handled:
            out[r.partition] = max(out.get(r.partition, 0), r.offset + 1)
        return out


def worker(settings: StitcherSettings, client: aioredis.Redis,
           failing: Callable[[], bool] = lambda: False) -> tuple[KafkaLoop, Recording, StitcherMetrics]:
    metrics = StitcherMetrics()
    loop, handler = build(settings, metrics, client)
    recording = Recording(handler, failing)
    loop.handler = recording
    return loop, recording, metrics


async def run_until(loop: KafkaLoop, done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            assert not task.done(), task.exception()
            assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.1)  # polling a condition with a deadline
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
def settings(service_env: dict[str, str], infra: Infra, topics: Topics) -> StitcherSettings:
    create_topics(infra.bootstrap_servers, topics)
    return StitcherSettings.model_validate(worker_env(service_env, JOURNEYS_STITCHER_BATCH_SIZE="7"))


def channel_events(n: int) -> list[dict[str, Any]]:
    t = now_ms() - 60_000
    return [event(f"e{i}", t + i, cookie_id=f"ck-{i % 5}") for i in range(n)]


async def test_committed_offsets_are_the_last_handled_plus_one(
        settings: StitcherSettings, infra: Infra, topics: Topics, redis_client: Any) -> None:
    produce(infra.bootstrap_servers, topics.channel_events, channel_events(40))
    client = aioredis.Redis.from_url(settings.redis_url)
    loop, rec, metrics = worker(settings, client)

    def all_committed() -> bool:
        return len(rec.handled) >= 40 and committed(infra.bootstrap_servers, settings.group_id,
                                                    topics.channel_events) == rec.last_plus_one()

    await run_until(loop, all_committed, "the handled batches committed")
    assert len(rec.last_plus_one()) > 1  # several partitions, each exact
    assert metrics.registry.get_sample_value("journeys_touchpoints_written_total") == 40
    await client.aclose()


async def test_a_failing_handler_is_never_committed_and_its_batch_is_retried(
        settings: StitcherSettings, infra: Infra, topics: Topics, redis_client: Any) -> None:
    produce(infra.bootstrap_servers, topics.channel_events, channel_events(20))
    client = aioredis.Redis.from_url(settings.redis_url)
    failing = [True]
    loop, rec, metrics = worker(settings, client, failing=lambda: failing[0])
    while_failing: list[dict[int, int]] = []

    def recovered_and_committed() -> bool:
        offsets = committed(infra.bootstrap_servers, settings.group_id, topics.channel_events)
        if failing[0]:
            while_failing.append(offsets)
            failing[0] = rec.attempts < 3  # the fault clears after three failed attempts
            return False
        return len(rec.handled) >= 20 and offsets == rec.last_plus_one()

    await run_until(loop, recovered_and_committed, "the batch retried, handled and committed")
    assert while_failing and all(c == {} for c in while_failing)
    assert (metrics.registry.get_sample_value("journeys_retries_total", {"target": "handler"}) or 0) >= 3
    assert sorted(orjson.loads(r.value or b"")["event_id"] for r in rec.handled) == sorted(
        f"e{i}" for i in range(20))  # the same records, each handled once it worked
    await client.aclose()
