"""librdkafka configuration of every Kafka client the services create, from the common settings."""

from __future__ import annotations

import logging
from typing import Any

from services.common.settings import CommonSettings


def client_config(settings: CommonSettings) -> dict[str, Any]:
    """What every client (consumer, producer, admin) shares: where the brokers are."""
    return {"bootstrap.servers": settings.kafka_bootstrap_servers,
            "logger": logging.getLogger("librdkafka")}


def consumer_config(settings: CommonSettings, group_id: str, session_timeout_s: float) -> dict[str, Any]:
    timeout_ms = int(session_timeout_s * 1000)
    return {
        **client_config(settings),
        "group.id": group_id,
        # Offsets are committed by the loop only, explicitly, after a batch is handled and delivered.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": timeout_ms,
        "heartbeat.interval.ms": max(100, min(3000, timeout_ms // 3)),
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
    }


def producer_config(settings: CommonSettings) -> dict[str, Any]:
    return {
        **client_config(settings),
        "acks": "all",
        # Idempotent: a retry inside librdkafka never duplicates or reorders a record on the topic.
        "enable.idempotence": True,
        "linger.ms": 2,
        # Java's partitioner: a keyed record lands on the partition any Java client or Kafka Streams picks.
        "partitioner": "murmur2_random",
        "message.max.bytes": 4 * 1024 * 1024,
    }
