"""Kafka side of the benchmark: private topics, a fast producer, message counts and the two bare loops.

The bare loops are the ceiling a worker is compared with: consume every record of the topic and decode
it with orjson, nothing else. One uses confluent-kafka (librdkafka; ``Consumer.consume`` batches), the
other aiokafka (``getmany``), so the run also shows what the client library alone costs per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Pace:
    """A measured stretch of work: how many events, in how long, for how much CPU."""

    events: int
    wall_s: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.events / max(self.wall_s, 1e-9)

    @property
    def cpu_us(self) -> float:
        """CPU microseconds per event."""
        return self.cpu_s / max(self.events, 1) * 1e6


class Clock:
    """Times a bare loop the way a worker is timed: from its first batch (client start-up and the first
    fetch are not consumption), counting the events after that batch."""

    def __init__(self) -> None:
        self.seen, self.first, self.t0, self.cpu0 = 0, 0, 0.0, 0.0

    def batch(self, size: int) -> None:
        if size and not self.seen:
            self.first, self.t0, self.cpu0 = size, time.perf_counter(), time.process_time()
        self.seen += size

    def pace(self) -> Pace:
        return Pace(self.seen - self.first, time.perf_counter() - self.t0, time.process_time() - self.cpu0)


class Topics:
    """Creates, counts and deletes the run's topics (one AdminClient and one probe consumer)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self._probe: Consumer | None = None

    def create(self, names: Iterable[str], partitions: int) -> None:
        futures = self.admin.create_topics([NewTopic(n, partitions, 1) for n in names], operation_timeout=30)
        for future in futures.values():
            future.result(timeout=60)

    def delete(self, names: Sequence[str], groups: Sequence[str]) -> None:
        for future in self.admin.delete_topics(list(names), operation_timeout=30).values():
            with contextlib.suppress(KafkaException):  # never created, or already gone
                future.result(timeout=60)
        if groups:
            for future in self.admin.delete_consumer_groups(list(groups), request_timeout=30).values():
                with contextlib.suppress(KafkaException):  # a group that never committed is absent
                    future.result(timeout=60)

    def count(self, topic: str) -> int:
        """Records on ``topic`` (sum of high - low watermark over its partitions)."""
        if self._probe is None:
            self._probe = Consumer(
                {"bootstrap.servers": self.bootstrap, "group.id": "bench-probe", "enable.auto.commit": False}
            )
        parts = self._probe.list_topics(topic, timeout=10).topics[topic].partitions
        n = 0
        for p in parts:
            low, high = self._probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            n += high - low
        return n

    def ends(self, topic: str) -> dict[int, int]:
        """High watermark of every partition of ``topic``."""
        self.count(topic)  # creates the probe
        assert self._probe is not None
        parts = self._probe.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: self._probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()


def producer(bootstrap: str, linger_ms: int) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": linger_ms,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
        }
    )


def send(p: Producer, topic: str, value: bytes) -> None:
    while True:
        try:
            p.produce(topic, value)
            return
        except BufferError:  # local queue full: let librdkafka drain it
            p.poll(0.05)


def produce_all(bootstrap: str, topic: str, values: Sequence[bytes], progress: Progress) -> float:
    """Produce every value (no key: the producer spreads them) and wait for all acks; wall seconds."""
    p = producer(bootstrap, linger_ms=20)
    t0 = time.perf_counter()
    for i, value in enumerate(values):
        send(p, topic, value)
        if i % 20_000 == 0:
            p.poll(0)
            progress(i)
    left = p.flush(120)
    if left:
        raise SystemExit(f"{left} events not acknowledged by Kafka")
    return time.perf_counter() - t0


def bare_confluent(bootstrap: str, topic: str, partitions: int, n: int, progress: Progress) -> Pace:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-bare",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 4 * 1024 * 1024,
            # Once its prefetch queue is full librdkafka waits this long (default 1 s) before
            # fetching again: a loop that drains faster than that would idle on it.
            "fetch.queue.backoff.ms": 1,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    clock = Clock()
    try:
        while clock.seen < n:
            # A short timeout: consume() waits for a full batch until then, which would idle the tail.
            batch = consumer.consume(num_messages=10_000, timeout=0.01)
            clock.batch(len(batch))
            for msg in batch:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(err)
                orjson.loads(msg.value())  # type: ignore[arg-type]
            progress(clock.seen)
        return clock.pace()
    finally:
        consumer.close()


def bare_aiokafka(bootstrap: str, topic: str, partitions: int, n: int, progress: Progress) -> Pace:
    return asyncio.run(_bare_aiokafka(bootstrap, topic, partitions, n, progress))


async def _bare_aiokafka(bootstrap: str, topic: str, partitions: int, n: int, progress: Progress) -> Pace:
    from aiokafka import AIOKafkaConsumer  # a test extra: the comparison is its only use
    from aiokafka import TopicPartition as AioTP

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    tps = [AioTP(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    clock = Clock()
    try:
        while clock.seen < n:
            batches = await consumer.getmany(timeout_ms=10, max_records=10_000)
            clock.batch(sum(map(len, batches.values())))
            for records in batches.values():
                for record in records:
                    orjson.loads(record.value)
            progress(clock.seen)
        return clock.pace()
    finally:
        await consumer.stop()
