"""librdkafka configuration of every Kafka client the services create, from the common settings."""

from __future__ import annotations

import logging
from typing import Any

from services.common.settings import CommonSettings

# How often a consumer heartbeats (at most): a rebalance reaches every member within about this long.
HEARTBEAT_MS = 1000


def client_config(settings: CommonSettings) -> dict[str, Any]:
    """What every client (consumer, producer, admin) shares: where the brokers are."""
    return {"bootstrap.servers": settings.kafka_bootstrap_servers,
            "logger": logging.getLogger("librdkafka")}


def consumer_config(settings: CommonSettings, group_id: str) -> dict[str, Any]:
    """A group consumer that recovers fast (docs/operations.md, "Recovery"):

    - static membership: a worker restarted under its group.instance.id (settings.group_instance_id) takes
      its partitions back at once, no rebalance, no waiting out the session of the member it replaces;
    - a short session (JOURNEYS_KAFKA_SESSION_TIMEOUT, default 10 s) with a 1 s heartbeat: a worker that dies
      for good loses its partitions to the others within about that long;
    - the cooperative-sticky assignor: a rebalance moves only the partitions that change owner, the others
      keep being consumed (the loop's on_assign/on_revoke already add and remove what they are given, and
      confluent-kafka does the incremental assign itself when the callback does not)."""
    timeout_ms = int(settings.session_timeout_s * 1000)
    config = {
        **client_config(settings),
        "group.id": group_id,
        # Offsets are committed by the loop only, explicitly, after a batch is handled and delivered.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": timeout_ms,
        "heartbeat.interval.ms": max(100, min(HEARTBEAT_MS, timeout_ms // 3)),
        "partition.assignment.strategy": "cooperative-sticky",
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
    }
    instance = settings.group_instance_id()
    if instance is not None:
        config["group.instance.id"] = instance
    return config


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
