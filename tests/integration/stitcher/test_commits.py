"""The stitcher's offsets on a real broker: what its one Kafka loop commits after a batch, and that a batch
whose handling fails is never committed past (the worker in this process; the SIGKILL case is in
test_worker.py, on a real process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from services.common.kafka_loop import KafkaLoop
from services.common.timeutil import now_ms, parse_rfc3339_ms
from services.stitcher.metrics import StitcherMetrics
from services.stitcher.settings import StitcherSettings
from services.stitcher.worker import build
from tests.conftest import Infra, Topics
from tests.integration.loop.support import Recording, run_until
from tests.integration.stitcher.support import committed, create_topics, event, produce, worker_env

pytestmark = pytest.mark.integration


def worker(
    settings: StitcherSettings, client: aioredis.Redis, failing: Callable[[], bool] = lambda: False
) -> tuple[KafkaLoop, Recording, StitcherMetrics]:
    metrics = StitcherMetrics()
    loop, handler = build(settings, metrics, client)
    recording = Recording(handler, failing)
    loop.handler = recording
    return loop, recording, metrics


@pytest.fixture
def settings(service_env: dict[str, str], infra: Infra, topics: Topics) -> StitcherSettings:
    create_topics(infra.bootstrap_servers, topics)
    return StitcherSettings.model_validate(worker_env(service_env, JOURNEYS_STITCHER_BATCH_SIZE="7"))


def channel_events(n: int) -> list[dict[str, Any]]:
    t = now_ms() - 60_000
    return [event(f"e{i}", t + i, cookie_id=f"ck-{i % 5}") for i in range(n)]


async def test_committed_offsets_are_the_last_handled_plus_one(
    settings: StitcherSettings, infra: Infra, topics: Topics, redis_client: Any
) -> None:
    produce(infra.bootstrap_servers, topics.channel_events, channel_events(40))
    client = aioredis.Redis.from_url(settings.redis_url)
    loop, rec, metrics = worker(settings, client)

    def all_committed() -> bool:
        return (
            len(rec.handled) >= 40
            and committed(infra.bootstrap_servers, settings.group_id, topics.channel_events)
            == rec.last_plus_one_by_partition()
        )

    await run_until(loop, all_committed, "the handled batches committed")
    assert len(rec.last_plus_one_by_partition()) > 1  # several partitions, each exact
    assert metrics.registry.get_sample_value("journeys_touchpoints_written_total") == 40
    await client.aclose()


async def test_a_failing_handler_is_never_committed_and_its_batch_is_retried(
    settings: StitcherSettings, infra: Infra, topics: Topics, redis_client: Any
) -> None:
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
        return len(rec.handled) >= 20 and offsets == rec.last_plus_one_by_partition()

    await run_until(loop, recovered_and_committed, "the batch retried, handled and committed")
    assert while_failing and all(c == {} for c in while_failing)
    assert (metrics.registry.get_sample_value("journeys_retries_total", {"target": "handler"}) or 0) >= 3
    assert sorted(orjson.loads(r.value or b"")["event_id"] for r in rec.handled) == sorted(
        f"e{i}" for i in range(20)
    )  # the same records, each handled once it worked
    await client.aclose()


async def test_the_stitcher_proves_only_what_it_stitched_and_committed(
    settings: StitcherSettings, infra: Infra, topics: Topics, redis_client: Any
) -> None:
    """The gap detector's stall evidence (services/common/progress.py): nothing while a batch fails, then
    per input partition the newest event stitched and a drained-through time after the records."""
    from services.common.keys import Keys
    from services.common.progress import InputProgress

    docs = channel_events(30)
    produce(infra.bootstrap_servers, topics.channel_events, docs)
    produced_by = now_ms()
    client = aioredis.Redis.from_url(settings.redis_url)
    failing = [True]
    loop, rec, _ = worker(settings, client, failing=lambda: failing[0])
    key = Keys(settings.key_prefix).clock_inputs
    while_failing: list[dict[bytes, bytes]] = []

    def proven() -> bool:
        reports = redis_client.hgetall(key)
        if failing[0]:
            while_failing.append(reports)
            failing[0] = rec.attempts < 3
            return False
        parts = {int(p): InputProgress.parse(v) for p, v in reports.items() if p != b"n"}
        return (
            reports.get(b"n") == b"4"
            and len(parts) == 4
            and all(v.seen_ms >= produced_by for v in parts.values())
        )

    await run_until(loop, proven, "every input partition proven past the produced records")
    # While failing, no partition claimed any stitched event (a drained-through time needs the commit).
    assert all(
        InputProgress.parse(v).event_ms == 0 and InputProgress.parse(v).seen_ms < produced_by
        for reports in while_failing
        for p, v in reports.items()
        if p != b"n"
    )
    parts = {int(p): InputProgress.parse(v) for p, v in redis_client.hgetall(key).items() if p != b"n"}
    newest: dict[int, int] = {}
    for r in rec.handled:
        t = parse_rfc3339_ms(orjson.loads(r.value or b"")["occurred_at"])
        newest[r.partition] = max(newest.get(r.partition, 0), t)
    assert {p: v.event_ms for p, v in parts.items() if v.event_ms} == newest
    await client.aclose()
