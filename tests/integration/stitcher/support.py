"""Running a real stitcher worker as a subprocess, producing channel events and reading results."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
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


@contextmanager
def stitcher(env: dict[str, str], log: Path, **extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """A worker in its own process (own consumer group per test); SIGTERM on exit."""
    full = dict(env, JOURNEYS_STITCHER_METRICS_PORT=str(free_port()),
                JOURNEYS_STITCHER_GROUP=f"g-{env['JOURNEYS_KEY_PREFIX']}",
                JOURNEYS_STITCHER_SESSION_TIMEOUT="6s")
    full.update(extra)
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "services.cli.main", "stitcher"], env=full,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        poll(lambda: proc.poll() is not None or _ready(log.read_bytes()), timeout=60,
             what="the stitcher worker to start")
        assert proc.poll() is None, log.read_text()[-3000:]
        yield proc
    finally:
        stop_process(proc)


def _ready(log: bytes) -> bool:
    return b"Worker]: Ready" in log or b"stitcher ready" in log


def event(eid: str, ms: int | None = None, channel: str = "web", **ids: str) -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": format_ms(ms if ms is not None else now_ms() - 60_000),
            "channel": channel, "touchpoint": "t", "identifiers": ids}


def produce(bootstrap: str, topic: str, items: Sequence[dict[str, Any] | bytes], partition: int | None = None,
            key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for item in items:
        value = item if isinstance(item, bytes) else orjson.dumps(item)
        producer.send(topic, value, key=key, partition=partition, headers=headers)
    producer.flush()
    producer.close()


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30,
                distinct: Callable[[Any], Any] | None = None) -> list[Any]:
    """Records of a topic, once at least ``expected`` (distinct by ``distinct``, when given) arrived."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=500)
    got: list[Any] = []
    try:
        def more() -> bool:
            got.extend(consumer)
            return len({distinct(r) for r in got} if distinct else got) >= expected
        poll(more, timeout=timeout, what=f"{expected} records on {topic}")
    finally:
        consumer.close()
    return got
