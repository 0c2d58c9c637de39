"""The one Kafka loop against a real broker: what it commits, when, and what it never commits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge

from services.common.kafka_loop import KafkaLoop, Offsets, Outbox, OutRecord, Record
from services.common.loop_metrics import LoopMetrics
from services.common.settings import CommonSettings
from services.stack.kafka_broker import create_topics
from tests.conftest import Infra

pytestmark = pytest.mark.integration
PARTITIONS = 3


def settings(infra: Infra) -> CommonSettings:
    return CommonSettings.model_validate(
        {"KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers, "REDIS_URL": infra.redis_url}
    )


REGISTRIES: dict[int, CollectorRegistry] = {}


def metrics() -> LoopMetrics:
    r = CollectorRegistry()
    m = LoopMetrics(Gauge("lag", "", ["topic"], registry=r), Counter("retries", "", ["target"], registry=r))
    REGISTRIES[id(m)] = r
    return m


def sample(m: LoopMetrics, name: str, **labels: str) -> float:
    """A series' current value, read through the registry's public API."""
    return REGISTRIES[id(m)].get_sample_value(name, labels) or 0.0


def produce(infra: Infra, topic: str, n: int) -> None:
    p = Producer({"bootstrap.servers": infra.bootstrap_servers})
    for i in range(n):
        p.produce(topic, value=str(i).encode(), key=f"k{i % 7}".encode())
    assert p.flush(30) == 0


def committed(infra: Infra, group: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": infra.bootstrap_servers, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def high_watermarks(infra: Infra, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": infra.bootstrap_servers, "group.id": "watermarks"})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in range(PARTITIONS)}
    finally:
        c.close()


class Recorder:
    """Handles batches by remembering them; fails while ``failing`` says so; may copy records out."""

    def __init__(self, copy_to: str | None = None, failing: Callable[[], bool] = lambda: False) -> None:
        self.seen: list[Record] = []
        self.copy_to, self.failing, self.attempts = copy_to, failing, 0

    async def handle(self, records: list[Record], out: Outbox) -> None:
        self.attempts += 1
        if self.failing():
            raise RuntimeError("handler failed")
        self.seen += records
        if self.copy_to:
            out.send(OutRecord(self.copy_to, r.key, r.value) for r in records)


async def run_until(loop: KafkaLoop, done: Callable[[], bool], timeout: float = 60) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    deadline = asyncio.get_running_loop().time() + timeout
    while not done():
        assert not task.done(), task.exception()
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)  # polling a condition with a deadline
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_commits_last_handled_offset_plus_one_per_partition(infra: Infra, unique: str) -> None:
    topic, out_topic, group = f"t{unique}-in", f"t{unique}-out", f"g{unique}"
    create_topics(infra.bootstrap_servers, [topic, out_topic], PARTITIONS)
    produce(infra, topic, 500)
    seen_commits: list[Offsets] = []
    handler = Recorder(copy_to=out_topic)
    loop = KafkaLoop(
        settings(infra),
        group_id=group,
        topics=[topic],
        handler=handler,
        metrics=metrics(),
        batch_size=64,
        on_commit=seen_commits.append,
    )
    await run_until(
        loop,
        lambda: (
            len(handler.seen) >= 500
            and bool(seen_commits)
            and sum(seen_commits[-1].values()) > 0
            and _all_committed(seen_commits, 500)
        ),
    )
    last = {p: max(r.offset for r in handler.seen if r.partition == p) for p in range(PARTITIONS)}
    assert committed(infra, group, topic) == {p: o + 1 for p, o in last.items()}
    assert high_watermarks(infra, topic) == {p: o + 1 for p, o in last.items()}
    # Every commit the loop made covered records it had handled, and each partition only moved forward.
    prev: dict[tuple[str, int], int] = {}
    for offsets in seen_commits:
        for tp, off in offsets.items():
            assert off > prev.get(tp, -1)
            prev[tp] = off
    assert sum(high_watermarks(infra, out_topic).values()) == 500  # produced and acknowledged


def _all_committed(commits: list[Offsets], n: int) -> bool:
    latest: dict[tuple[str, int], int] = {}
    for c in commits:
        latest.update(c)
    return sum(latest.values()) == n


async def test_a_failing_batch_is_never_committed_and_retried_as_is(infra: Infra, unique: str) -> None:
    topic, group = f"t{unique}-in", f"g{unique}"
    create_topics(infra.bootstrap_servers, [topic], PARTITIONS)
    produce(infra, topic, 50)
    fail = [True]
    handler = Recorder(failing=lambda: fail[0])
    m = metrics()
    loop = KafkaLoop(settings(infra), group_id=group, topics=[topic], handler=handler, metrics=m)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    deadline = asyncio.get_running_loop().time() + 60
    while handler.attempts < 3:  # the same batch keeps being retried with backoff
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.05)
    assert all(o < 0 for o in committed(infra, group, topic).values())  # nothing committed past it
    assert sample(m, "retries_total", target="handler") >= 2
    fail[0] = False
    while sum(max(0, o) for o in committed(infra, group, topic).values()) < 50:
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert sorted(int(r.value or b"") for r in handler.seen) == list(range(50))


async def test_stop_while_failing_leaves_the_batch_uncommitted(infra: Infra, unique: str) -> None:
    topic, group = f"t{unique}-in", f"g{unique}"
    create_topics(infra.bootstrap_servers, [topic], PARTITIONS)
    produce(infra, topic, 20)
    handler = Recorder(failing=lambda: True)
    loop = KafkaLoop(settings(infra), group_id=group, topics=[topic], handler=handler, metrics=metrics())
    await run_until(loop, lambda: handler.attempts >= 1)
    assert all(o < 0 for o in committed(infra, group, topic).values())


async def test_lag_is_high_watermark_minus_committed(infra: Infra, unique: str) -> None:
    topic, group = f"t{unique}-in", f"g{unique}"
    create_topics(infra.bootstrap_servers, [topic], PARTITIONS)
    produce(infra, topic, 30)
    fail = [True]
    handler = Recorder(failing=lambda: fail[0])
    m = metrics()
    loop = KafkaLoop(
        settings(infra), group_id=group, topics=[topic], handler=handler, metrics=m, lag_every_s=0.1
    )
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    deadline = asyncio.get_running_loop().time() + 60
    # Consumed but not committed still counts as lag: the gauge reads the committed offsets.
    while sample(m, "lag", topic=topic) != 30:
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.05)
    fail[0] = False
    while sample(m, "lag", topic=topic) != 0:
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_seen_through_proves_only_what_was_committed(infra: Infra, unique: str) -> None:
    topic, group = f"t{unique}-in", f"g{unique}"
    create_topics(infra.bootstrap_servers, [topic], PARTITIONS)
    produce(infra, topic, 40)
    fail = [True]
    handler = Recorder(failing=lambda: fail[0])
    loop = KafkaLoop(
        settings(infra), group_id=group, topics=[topic], handler=handler, metrics=metrics(), lag_every_s=0.1
    )
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    deadline = asyncio.get_running_loop().time() + 60
    while handler.attempts < 3:  # consumed, not handled: no partition may claim to be seen through
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.05)
    assert loop.seen_through() == {}
    fail[0] = False
    before = time.time() * 1000
    while len(loop.seen_through()) < PARTITIONS or min(loop.seen_through().values()) < before:
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.05)
    # Seen through a time means every record appended before it was handled and committed.
    assert len(handler.seen) == 40
    assert committed(infra, group, topic) == high_watermarks(infra, topic)
    assert await loop.partition_count(topic) == PARTITIONS
    assert await loop.partition_count(f"t{unique}-missing") is None
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_a_worker_fenced_by_its_static_name_stops_instead_of_idling(infra: Infra, unique: str) -> None:
    from services.common.kafka_loop import ConsumerFenced

    topic, group = f"t{unique}-in", f"g{unique}"
    create_topics(infra.bootstrap_servers, [topic], PARTITIONS)
    named = CommonSettings.model_validate(
        {
            "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
            "REDIS_URL": infra.redis_url,
            "JOURNEYS_INSTANCE_ID": f"w-{unique}",
        }
    )
    old = KafkaLoop(named, group_id=group, topics=[topic], handler=Recorder(), metrics=metrics())
    stop = asyncio.Event()
    first = asyncio.create_task(old.run(stop))
    deadline = asyncio.get_running_loop().time() + 60
    while not old.assigned():
        assert asyncio.get_running_loop().time() < deadline and not first.done()
        await asyncio.sleep(0.05)
    # A second live worker under the same name (a misconfiguration): the broker fences the older one.
    new = KafkaLoop(named, group_id=group, topics=[topic], handler=Recorder(), metrics=metrics())
    second = asyncio.create_task(new.run(stop))
    while not first.done():
        assert asyncio.get_running_loop().time() < deadline, "the fenced worker kept running"
        await asyncio.sleep(0.05)
    with pytest.raises(ConsumerFenced):
        first.result()
    stop.set()
    await asyncio.wait_for(second, 30)
