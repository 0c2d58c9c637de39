"""Create the stitcher's topics with JOURNEYS_TOPIC_PARTITIONS partitions when they are missing."""

from __future__ import annotations

from contextlib import suppress

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from services.common.errors import UserError
from services.stitcher.settings import StitcherSettings


def stitcher_topics(settings: StitcherSettings) -> list[str]:
    return [
        settings.topic_channel_events,
        settings.topic_dlq,
        settings.topic_stitched_events,
        settings.topic_identity_merges,
    ]


def ensure_topics(settings: StitcherSettings, *, timeout_s: float = 15.0) -> None:
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
            client_id="journeys-stitcher-admin",
            request_timeout_ms=int(timeout_s * 1000),
        )
    except KafkaError as exc:
        raise UserError(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({type(exc).__name__}); "
            "start it with `journeys up` or set KAFKA_BOOTSTRAP_SERVERS"
        ) from exc
    try:
        existing = set(admin.list_topics())
        missing = [t for t in stitcher_topics(settings) if t not in existing]
        if missing:
            with suppress(TopicAlreadyExistsError):  # another worker may have created it first
                admin.create_topics([NewTopic(t, settings.topic_partitions, 1) for t in missing])
    finally:
        admin.close()
