"""Shared plumbing of the detector benchmarks: a private run (topics, key prefix, consumer group), a
`journeys detector` subprocess, stitched events and a percentile helper."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from services.common.settings import CommonSettings
from services.stack.kafka_broker import create_topics

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Run:
    """One benchmark run's private names, so runs never collide with each other or the tests."""

    tag: str = field(default_factory=lambda: f"bench{uuid.uuid4().hex[:8]}")
    common: CommonSettings = field(default_factory=CommonSettings)

    @property
    def stitched(self) -> str:
        return f"{self.tag}-stitched-events"

    @property
    def alerts(self) -> str:
        return f"{self.tag}-gap-alerts"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.common.kafka_bootstrap_servers,
            "REDIS_URL": self.common.redis_url,
            "JOURNEYS_KEY_PREFIX": self.tag,
            "JOURNEYS_TOPIC_STITCHED_EVENTS": self.stitched,
            "JOURNEYS_TOPIC_GAP_ALERTS": self.alerts,
            "JOURNEYS_TOPIC_IDENTITY_MERGES": f"{self.tag}-identity-merges",
            "JOURNEYS_TOPIC_DLQ": f"{self.tag}-dlq",
            "JOURNEYS_DETECTOR_GROUP": f"{self.tag}-detector",
            "JOURNEYS_DETECTOR_METRICS_PORT": str(free_port()),
            "JOURNEYS_LOG_LEVEL": "WARNING",
            **extra,
        }

    def create_topics(self, partitions: int = 4) -> None:
        names = [self.stitched, self.alerts, f"{self.tag}-identity-merges", f"{self.tag}-dlq"]
        create_topics(self.common.kafka_bootstrap_servers, names, partitions)

    def cleanup(self) -> None:
        import redis
        from kafka import KafkaAdminClient

        client = redis.Redis.from_url(self.common.redis_url)
        for key in client.scan_iter(match=f"{self.tag}:*", count=1000):
            client.delete(key)
        client.close()
        admin = KafkaAdminClient(bootstrap_servers=self.common.kafka_bootstrap_servers)
        try:
            admin.delete_topics([t for t in admin.list_topics() if t.startswith(self.tag)])
        finally:
            admin.close()


@contextmanager
def detector(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `journeys detector` worker, ready (WARNING logs hide the ready line, so wait for its port)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "detector"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        port = int(env["JOURNEYS_DETECTOR_METRICS_PORT"])
        deadline = time.monotonic() + 60
        while not _port_open(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"detector did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def read_alerts(run: Run, stop: threading.Event, on_alert: Callable[[dict[str, Any], float], None]) -> None:
    """Call ``on_alert(alert, perf_counter at arrival)`` for every alert on the run's gap-alerts topic, from
    its beginning, until ``stop`` is set. confluent-kafka: the detector produces lz4-compressed batches,
    which kafka-python cannot read without the optional lz4 package."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": run.common.kafka_bootstrap_servers,
            "group.id": f"{run.tag}-alert-reader",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 5,
        }
    )
    parts = consumer.list_topics(run.alerts, timeout=10).topics[run.alerts].partitions
    consumer.assign([TopicPartition(run.alerts, p, OFFSET_BEGINNING) for p in parts])
    try:
        while not stop.is_set():
            for msg in consumer.consume(num_messages=1000, timeout=0.05):
                if msg.error() is None:
                    on_alert(orjson.loads(msg.value()), time.perf_counter())  # type: ignore[arg-type]
    finally:
        consumer.close()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stitched(eid: str, cid: str, t: int, channel: str, **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": "1.0",
        "event_id": eid,
        "occurred_at": "2026-01-01T00:00:00Z",
        "occurred_at_ms": t,
        "channel": channel,
        "touchpoint": "tp",
        "direction": "inbound",
        "visibility": "onstage",
        "customer_id": cid,
        "identity_keys": [],
        "stitched_at_ms": t,
        **extra,
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
