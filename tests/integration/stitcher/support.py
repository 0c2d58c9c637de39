"""Running a real stitcher worker as a subprocess, producing channel events and reading results."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
from confluent_kafka import Consumer, TopicPartition
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from services.common.timeutil import format_ms, now_ms
from tests.conftest import Topics
from tests.helpers import free_port, poll, stop_process


def create_topics(bootstrap: str, topics: Topics, partitions: int = 4) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        names = (topics.channel_events, topics.dlq, topics.stitched_events, topics.identity_merges)
        admin.create_topics([NewTopic(t, partitions, 1) for t in names])
    finally:
        admin.close()


def worker_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """The test's environment for a worker: its own metrics port, the test's consumer group."""
    full = dict(
        env,
        JOURNEYS_STITCHER_METRICS_PORT=str(free_port()),
        JOURNEYS_STITCHER_GROUP=group_of(env),
        JOURNEYS_KAFKA_SESSION_TIMEOUT="6s",
    )
    full.update(extra)
    return full


def group_of(env: dict[str, str]) -> str:
    return f"g-{env['JOURNEYS_KEY_PREFIX']}"


@contextmanager
def stitcher(env: dict[str, str], log: Path, **extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """A worker (`journeys stitcher`) in its own process; SIGTERM on exit."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "stitcher"],
            env=worker_env(env, **extra),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        poll(
            lambda: proc.poll() is not None or b"stitcher ready" in log.read_bytes(),
            timeout=60,
            what="the stitcher worker to start",
        )
        assert proc.poll() is None, log.read_text()[-3000:]
        yield proc
    finally:
        stop_process(proc)


def killed_before_its_first_commit(env: dict[str, str], log: Path, **extra: str) -> int:
    """Run a real worker process that SIGKILLs itself when its first batch is handled (Redis written,
    records produced) and about to be committed; returns its exit status once it is dead."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.stitcher.kill_before_commit"],
            env=worker_env(env, **extra),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        return proc.wait(timeout=90)
    finally:
        stop_process(proc)


def committed(bootstrap: str, group: str, topic: str, partitions: int = 4) -> dict[int, int]:
    """The group's committed offsets of a topic, by partition (partitions without one left out)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: tp.offset for tp in c.committed(tps, timeout=10) if tp.offset >= 0}
    finally:
        c.close()


def event(eid: str, ms: int | None = None, channel: str = "web", **ids: str) -> dict[str, Any]:
    return {
        "event_id": eid,
        "occurred_at": format_ms(ms if ms is not None else now_ms() - 60_000),
        "channel": channel,
        "touchpoint": "t",
        "identifiers": ids,
    }


def produce(
    bootstrap: str,
    topic: str,
    items: Sequence[dict[str, Any] | bytes],
    partition: int | None = None,
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for item in items:
        value = item if isinstance(item, bytes) else orjson.dumps(item)
        producer.send(topic, value, key=key, partition=partition, headers=headers)
    producer.flush()
    producer.close()


@dataclass(frozen=True)
class Consumed:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int


def consume_all(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout: float = 30,
    distinct: Callable[[Any], Any] | None = None,
) -> list[Consumed]:
    """Records of a topic, once at least ``expected`` (distinct by ``distinct``, when given) arrived.
    confluent-kafka reads them: the services produce lz4 batches, which kafka-python cannot decode."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: list[Consumed] = []
    try:

        def more() -> bool:
            for m in consumer.consume(1000, 0.5):
                if m.error() is None:
                    headers = [
                        (k, v if isinstance(v, bytes) else str(v or "").encode())
                        for k, v in cast(list[tuple[str, str | bytes | None]], m.headers() or [])
                    ]
                    got.append(Consumed(m.key(), m.value() or b"", headers, m.partition() or 0))
            return len({distinct(r) for r in got} if distinct else got) >= expected

        poll(more, timeout=timeout, what=f"{expected} records on {topic}")
    finally:
        consumer.close()
    return got
