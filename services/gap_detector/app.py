"""The gap detector's faust app, built by a factory (no module-level app). Thin adapter: agents batch
records with ``take_events`` and hand them to the processor; a periodic timer claims due stalls."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
import redis.asyncio as aioredis
from aiokafka.errors import KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.keys import Keys
from services.common.timeutil import now_ms
from services.gap_detector.core.definitions import load_definitions
from services.gap_detector.core.logic import DetectorLogic
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.processor import DetectorProcessor, Record
from services.gap_detector.settings import GapDetectorSettings
from services.gap_detector.store import DetectorStore
from services.gap_detector.webhook import WebhookSender

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 5.0
LAG_EVERY_S = 2.0


def alert_key(alert: dict[str, Any]) -> str:
    """The gap-alerts record key: the customer, or the drop-off cell for aggregate alerts."""
    if "customer_id" in alert:
        return str(alert["customer_id"])
    return f"dropoff:{alert['journey']['type']}:{alert['journey']['stage']}:{alert['evidence']['channel']}"


def alert_headers(alert: dict[str, Any]) -> dict[str, bytes]:
    """CloudEvents binary-mode headers (docs/ARCHITECTURE.md)."""
    return {"ce_specversion": b"1.0", "ce_id": alert["alert_id"].encode(),
            "ce_type": b"dev.journeys.gap_alert.v1", "ce_source": b"journeys/gap-detector",
            "ce_time": alert["detected_at"].encode(), "content-type": b"application/json"}


def _broker(servers: str) -> str:
    return ";".join(f"kafka://{s.strip()}" for s in servers.split(",") if s.strip())


def _record(event: Any) -> Record:
    msg = event.message
    ts = int(msg.timestamp * 1000) if msg.timestamp else None
    return Record(msg.key, msg.value, ts, msg.topic, msg.partition, msg.offset)


async def retrying(what: Callable[[], Awaitable[Any]], metrics: DetectorMetrics) -> Any:
    """Run ``what`` until it succeeds, backing off on transient Redis/Kafka faults (bad input never
    raises here: it is dead-lettered by the processor)."""
    delay = 0.05
    while True:
        try:
            return await what()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            metrics.retries.labels("redis").inc()
            log.warning("redis unavailable (%s); retrying in %.2fs", exc, delay)
        except KafkaError as exc:
            metrics.retries.labels("kafka").inc()
            log.warning("kafka error (%s); retrying in %.2fs", exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)


def create_app(settings: GapDetectorSettings, metrics: DetectorMetrics | None = None) -> faust.App:
    """The detector app: stitched-events and identity-merges in, gap-alerts (and dead letters) out."""
    defs = load_definitions(settings.definitions)  # a bad file fails here, before anything connects
    m = metrics or DetectorMetrics()
    app = faust.App(
        settings.group_id, broker=_broker(settings.kafka_bootstrap_servers), web_enabled=False,
        autodiscover=False, store="memory://", topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest", producer_linger_ms=1, broker_commit_every=1000,
    )
    raw: dict[str, Any] = {"value_type": bytes, "key_type": bytes, "value_serializer": "raw",
                           "key_serializer": "raw"}
    stitched = app.topic(settings.topic_stitched_events, **raw)
    merges = app.topic(settings.topic_identity_merges, **raw)
    alerts_topic = app.topic(settings.topic_gap_alerts, **raw)
    dlq = app.topic(settings.topic_dlq, **raw)
    client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=10)
    store = DetectorStore(client, Keys(settings.key_prefix), settings.retention_ms, settings.recent_alerts)
    hook = (WebhookSender(settings.webhook_url, settings.webhook_format, settings.webhook_queue,
                          settings.webhook_retries, m) if settings.webhook_url else None)

    async def publish(alerts: list[dict[str, Any]]) -> None:
        futures = []
        for alert in alerts:
            futures.append(await alerts_topic.send(key=alert_key(alert).encode(), value=orjson.dumps(alert),
                                                   headers=alert_headers(alert)))
            if hook is not None and alert["type"] == "dropoff_spike":
                hook.enqueue(alert)
        await asyncio.gather(*futures)  # delivered before the batch's Redis writes

    async def dead_letter(rec: Record, reason: str, detail: str) -> None:
        headers = {"dlq_reason": reason.encode(), "dlq_detail": detail.encode(),
                   "dlq_source_topic": rec.topic.encode(),
                   "dlq_source_partition": str(rec.partition).encode(),
                   "dlq_source_offset": str(rec.offset).encode(), "dlq_at_ms": str(now_ms()).encode()}
        await (await dlq.send(key=rec.key, value=rec.value, headers=headers))

    logic = DetectorLogic(defs, settings.buffer_events, settings.lateness_ms)
    proc = DetectorProcessor(settings, logic, store, m, publish, dead_letter)

    @app.agent(stitched)
    async def detect(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_window_s):
            records = [_record(e) for e in events]
            await retrying(functools.partial(proc.on_events, records), m)

    @app.agent(merges)
    async def fold_merges(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_window_s):
            records = [_record(e) for e in events]
            await retrying(functools.partial(proc.on_merges, records), m)

    last_lag = [0.0]

    @app.timer(settings.tick_s)
    async def tick() -> None:
        await retrying(proc.on_tick, m)
        if time.monotonic() - last_lag[0] >= LAG_EVERY_S:
            last_lag[0] = time.monotonic()
            m.pending_timers.set(await retrying(store.pending_timers, m))
            _export_lag(app, m)

    if hook is not None:
        @app.task
        async def deliver_webhooks() -> None:
            await hook.run()

    return app


def _export_lag(app: faust.App, m: DetectorMetrics) -> None:
    consumer = app.consumer
    per_topic: dict[str, int] = {}
    for tp in consumer.assignment():
        try:
            high = consumer.highwater(tp)
        except Exception:  # no fetch yet for this partition
            continue
        read = getattr(consumer, "_read_offset", {}).get(tp)  # faust has no public accessor for it
        behind = max(0, (high or 0) - ((read + 1) if read is not None else 0))
        per_topic[tp.topic] = per_topic.get(tp.topic, 0) + behind
    for topic, lag in per_topic.items():
        m.lag.labels(topic).set(lag)
