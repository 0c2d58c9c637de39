"""A private Kafka broker + redis-server for one chaos run, started with the project's stack code on free
ports in their own state folder, so bouncing them never disturbs anyone else's tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.stack import kafka_broker, procs, redis_server
from services.stack.kafka_jars import jars_ready
from services.stack.procs import Proc
from services.stack.settings import StackSettings
from tests.helpers import free_port

TOPIC_NAMES = ("channel-events", "channel-events-dlq", "stitched-events", "identity-merges", "gap-alerts")
START_TIMEOUT_S = 120.0


def missing_prerequisite() -> str | None:
    """Why a private stack cannot start on this machine (None: it can)."""
    settings = StackSettings()
    if shutil.which("java") is None:
        return "no java on PATH (`journeys setup`)"
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH (`journeys setup`)"
    if not jars_ready(settings.kafka_libs):
        return f"no Kafka jars in {settings.kafka_libs} (`journeys setup`)"
    return None


def private_settings(state_dir: Path) -> StackSettings:
    """Settings of a stack of our own: fresh ports, its own state folder, never an external endpoint."""
    values: dict[str, Any] = {  # init values by their environment names: they win over the environment
        "JOURNEYS_STATE_DIR": str(state_dir),
        "JOURNEYS_KAFKA_PORT": free_port(),
        "JOURNEYS_KAFKA_CONTROLLER_PORT": free_port(),
        "JOURNEYS_REDIS_PORT": free_port(),
        "JOURNEYS_TOPIC_PARTITIONS": 4,
    }
    return StackSettings(**values)


@dataclass
class PrivateStack:
    settings: StackSettings
    topic_prefix: str = "chaos"
    kafka: Proc | None = None
    redis: Proc | None = None
    log: list[str] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.settings.local_bootstrap

    @property
    def redis_url(self) -> str:
        return self.settings.local_redis_url

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}-{name}"

    def start(self) -> None:
        self.start_redis()
        self.start_kafka()
        kafka_broker.create_topics(
            self.bootstrap, [self.topic(n) for n in TOPIC_NAMES], self.settings.topic_partitions
        )

    def start_kafka(self) -> None:
        self.kafka = kafka_broker.start(self.settings)
        procs.wait_until(
            lambda: kafka_broker.healthy(self.bootstrap),
            timeout=START_TIMEOUT_S,
            interval=0.25,
            what=f"private Kafka broker at {self.bootstrap}",
            log=self.kafka.log,
        )

    def stop_kafka(self) -> None:
        if self.kafka is not None:
            procs.stop(self.kafka, timeout=60)
            self.kafka = None

    def start_redis(self) -> None:
        self.redis = redis_server.start(self.settings)
        procs.wait_until(
            lambda: redis_server.healthy(self.redis_url),
            timeout=START_TIMEOUT_S,
            what=f"private Redis at {self.redis_url}",
            log=self.redis.log,
        )

    def stop_redis(self) -> None:
        if self.redis is not None:
            procs.stop(self.redis, timeout=30)
            self.redis = None

    def close(self) -> None:
        self.stop_kafka()
        self.stop_redis()
