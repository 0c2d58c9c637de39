"""The faust app factory: two thin agents around ``BatchHandlers`` (no module-level app)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import faust
import redis.asyncio as aioredis
from faust.types import EventT

from services.common.keys import Keys
from services.stitcher.adapters.kafka_batch import BatchSender
from services.stitcher.adapters.redis_store import RedisStitchStore
from services.stitcher.core.batch import Raw
from services.stitcher.metrics import CONSUMER_LAG
from services.stitcher.settings import StitcherSettings
from services.stitcher.worker import BatchHandlers

log = logging.getLogger(__name__)


def create_app(settings: StitcherSettings) -> faust.App:
    """A faust app running the identity agent and/or the journey writer (JOURNEYS_STITCHER_AGENTS)."""
    app = faust.App(
        settings.group_id,
        broker=[f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",")],
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        # Small buffers: a deep faust buffer is queueing latency (p50 2.4 s -> 40 ms at 1k events/s here).
        broker_max_poll_records=min(settings.batch_size, 500),
        stream_buffer_maxsize=settings.batch_size,
        producer_linger_ms=2,
        producer_acks=-1,
        broker_session_timeout=settings.session_timeout_s,
        broker_commit_interval=settings.commit_interval_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
    )
    store = RedisStitchStore(aioredis.Redis.from_url(settings.redis_url), Keys(settings.key_prefix),
                             settings.limits, settings.max_touchpoints, settings.retention_ms)

    # faust's own (started, configured) aiokafka producer; faust has no public accessor for it.
    sender = BatchSender(lambda: app.producer._ensure_producer())  # type: ignore[attr-defined]
    handlers = BatchHandlers(settings, store, sender)
    n, within = settings.batch_size, settings.batch_window_s
    topics = []

    if "identity" in settings.agent_names:
        channel_events = app.topic(settings.topic_channel_events, key_type=bytes, value_type=bytes)
        topics.append(settings.topic_channel_events)

        @app.agent(channel_events, name="identity")
        async def identity(stream: faust.StreamT[bytes]) -> None:
            async for events in cast(faust.Stream[bytes], stream).take_events(n, within=within):
                with _uncommitted_on_failure(events):
                    await handlers.identity_batch([_raw(e) for e in events])

    if "journey" in settings.agent_names:
        stitched = app.topic(settings.topic_stitched_events, key_type=bytes, value_type=bytes)
        topics.append(settings.topic_stitched_events)

        @app.agent(stitched, name="journey")
        async def journey(stream: faust.StreamT[bytes]) -> None:
            async for events in cast(faust.Stream[bytes], stream).take_events(n, within=within):
                with _uncommitted_on_failure(events):
                    await handlers.journey_batch([e.message.value for e in events],
                                                 [_ts_ms(e) for e in events])

    @app.timer(5.0)
    async def report_lag() -> None:
        _report_lag(app, topics)

    return app


@contextmanager
def _uncommitted_on_failure(events: Sequence[EventT]) -> Iterator[None]:
    """If the batch handler fails or is cancelled (shutdown), keep its offsets uncommitted.

    ``take_events`` acks a batch in a ``finally`` once the loop body ends, even when it ends by an
    exception. Marking the messages as already acked makes that ack a no-op, so faust never commits past
    them and the batch is redelivered to the next consumer (at-least-once; Redis writes are idempotent).
    """
    try:
        yield
    except BaseException as exc:
        for event in events:
            event.message.acked = True
        if isinstance(exc, Exception):
            log.error("batch of %d failed, left uncommitted: %r", len(events), exc)
        raise


def _raw(event: EventT) -> Raw:
    m = event.message
    return Raw(m.value, m.key, _headers(m.headers), m.topic, m.partition, m.offset, _ts_ms(event))


def _headers(raw: Any) -> dict[str, bytes]:
    pairs = raw.items() if isinstance(raw, Mapping) else (raw or ())
    return {str(k): (v if isinstance(v, bytes) else str(v or "").encode()) for k, v in pairs}


def _ts_ms(event: EventT) -> int:
    return int((event.message.timestamp or 0) * 1000)


def _report_lag(app: faust.App, topics: list[str]) -> None:
    lag: dict[str, int] = dict.fromkeys(topics, 0)
    consumer = app.consumer
    for tp in consumer.assignment():
        if tp.topic in lag:
            try:
                read = consumer._read_offset[tp]  # type: ignore[attr-defined] # faust keeps no public accessor for the read position
                high = consumer.highwater(tp)
            except (KeyError, AttributeError, TypeError):
                continue
            lag[tp.topic] += max(0, (high or 0) - ((read + 1) if read is not None else 0))
    for topic, value in lag.items():
        CONSUMER_LAG.labels(topic=topic).set(value)
