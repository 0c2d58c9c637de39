"""Helpers for the detector's integration tests: run `journeys detector` workers as subprocesses,
produce stitched events with kafka-python, read gap-alerts."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from services.common import contracts
from services.common.keys import Keys
from services.common.progress import InputProgress
from tests.conftest import Infra, Topics
from tests.helpers import free_port, poll, stop_process

ROOT = Path(__file__).resolve().parents[3]


class Worker:
    """One `journeys detector` subprocess with its log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.out = open(log, "ab")  # noqa: SIM115 - closed in stop()
        env = {**env, "JOURNEYS_DETECTOR_METRICS_PORT": str(free_port())}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "detector"],
            env=env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            return b"gap detector ready" in self.log.read_bytes()

        poll(ready, timeout=timeout, interval=0.2, what=f"detector worker ready ({self.log})")

    def stop(self) -> int:
        stop_process(self.proc, timeout=60)
        self.out.close()
        return int(self.proc.returncode)


def detector_env(service_env: dict[str, str], key_prefix: str, **extra: str) -> dict[str, str]:
    return {
        **service_env,
        "JOURNEYS_TIMER_CLOCK": "event",
        "JOURNEYS_DETECTOR_GROUP": f"det-{key_prefix}",
        "JOURNEYS_TOPIC_PARTITIONS": "4",
        "JOURNEYS_DETECTOR_TICK": "100ms",
        **extra,
    }


def prove_stitched(redis_client: Any, key_prefix: str, event_ms: int) -> None:
    """Stand in for a stitcher (these tests produce stitched events themselves): the one input partition
    is stitched through ``event_ms`` and drained now — the evidence stall timers wait for."""
    now = int(time.time() * 1000)
    keys = Keys(key_prefix)
    redis_client.hset(keys.clock_inputs, mapping={"n": 1, "0": InputProgress(event_ms, now, now).encode()})


def create_topics(infra: Infra, topics: Topics) -> None:
    from services.stack.kafka_broker import create_topics as create

    create(
        infra.bootstrap_servers,
        [topics.stitched_events, topics.identity_merges, topics.gap_alerts, topics.dlq],
        4,
    )


def stitched(eid: str, cid: str, t: int, channel: str = "web", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": "1.0",
        "event_id": eid,
        "occurred_at": "2026-11-23T00:00:00Z",
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
    assert contracts.first_error(contracts.STITCHED_EVENT, doc) is None, doc
    return doc


def produce(infra: Infra, topic: str, docs: Iterable[dict[str, Any]], key_field: str = "customer_id") -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=infra.bootstrap_servers, linger_ms=5)
    for doc in docs:
        producer.send(topic, key=str(doc[key_field]).encode(), value=orjson.dumps(doc))
    producer.flush(timeout=30)
    producer.close()


class TopicReader:
    """Every record of a topic from its beginning (confluent-kafka, which reads the lz4 batches the
    services produce), duplicates included."""

    def __init__(self, infra: Infra, topic: str) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer(
            {
                "bootstrap.servers": infra.bootstrap_servers,
                "group.id": f"reader-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self.consumer.subscribe([topic])
        self.records: list[Any] = []

    def read(self) -> list[Any]:
        """What arrived so far (confluent_kafka Messages: value(), key(), headers())."""
        self.records += [m for m in self.consumer.consume(1000, 0.2) if m.error() is None]
        return self.records

    def close(self) -> None:
        self.consumer.close()


class AlertReader:
    """Reads gap-alerts from the beginning and keeps every record (duplicates included)."""

    def __init__(self, infra: Infra, topic: str) -> None:
        self.reader = TopicReader(infra, topic)
        self.alerts: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        for rec in self.reader.read()[len(self.alerts) :]:
            alert = orjson.loads(rec.value())
            assert contracts.first_error(contracts.GAP_ALERT, alert) is None, alert
            self.alerts.append(alert)
        return self.alerts

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [a for a in self.read() if a["type"] == kind]

    def close(self) -> None:
        self.reader.close()
