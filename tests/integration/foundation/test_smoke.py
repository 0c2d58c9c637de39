"""Smoke: a channel event produced with kafka-python reaches Redis through the project's Kafka loop."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.common.contracts import CHANNEL_EVENT, SCHEMA_DIR, first_error
from tests.conftest import Infra, Topics
from tests.helpers import poll
from tests.integration.foundation.smoke_app import smoke_key

pytestmark = pytest.mark.integration

EXAMPLE = SCHEMA_DIR / "examples" / "channel_event.v1" / "valid" / "web_login.json"


@pytest.fixture
def smoke_worker(
    service_env: dict[str, str], topics: Topics, infra: Infra, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=infra.bootstrap_servers)
    admin.create_topics([NewTopic(topics.channel_events, 1, 1)])
    admin.close()
    log = tmp_path / "worker.log"
    env = dict(service_env)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.foundation.smoke_app"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).parents[3],
        )
    try:
        yield proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_channel_event_reaches_redis_through_the_kafka_loop(
    smoke_worker: tuple[subprocess.Popen[bytes], Path],
    infra: Infra,
    topics: Topics,
    key_prefix: str,
    redis_client: Any,
) -> None:
    from kafka import KafkaProducer

    event = orjson.loads(EXAMPLE.read_bytes())
    event["event_id"] = f"smoke-{key_prefix}"
    assert first_error(CHANNEL_EVENT, event) is None
    producer = KafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    producer.send(topics.channel_events, orjson.dumps(event)).get(timeout=30)
    producer.close()

    worker, log = smoke_worker

    def stored_event() -> bytes | None:
        if worker.poll() is not None:
            tail = log.read_text()[-2000:]
            raise AssertionError(f"the smoke worker exited with {worker.returncode}: {tail}")
        value: bytes | None = redis_client.get(smoke_key(key_prefix, event["event_id"]))
        return value

    stored = poll(stored_event, timeout=90, what="the event in Redis")
    assert orjson.loads(stored) == event
