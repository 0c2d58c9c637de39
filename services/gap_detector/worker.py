"""The gap detector worker: one consumer group on the project's one Kafka loop (services/common/kafka_loop)
reading stitched-events and identity-merges, gap-alerts and dead letters out through the loop's outbox.

Per batch (``handle``): merges first, then events, each in offset order; the processor saves a batch's
state with its alerts in a transactional outbox (one compare-and-set script call), then publishes them and
waits for the broker's acknowledgement; the loop commits the offsets only after ``handle`` returned and the
Kafka outbox (dead letters) is flushed. Between batches (``tick``): the watermark moves as far as the evidence
proves (core/clock.py), then due stall timers fire and closed drop-off minutes are judged.
The webhook sender is an asyncio task beside the loop (HTTP, not Kafka).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import redis.asyncio as aioredis

from services.common.alert_handling import with_handling
from services.common.dead_letter import dead_letter
from services.common.kafka_loop import KafkaLoop, Offsets, Outbox, OutRecord, Record
from services.common.keys import Keys
from services.common.redis_conn import connect
from services.common.runtime import ce_headers, tune_gc
from services.common.timeutil import now_ms
from services.gap_detector.clock_store import ClockStore
from services.gap_detector.core.clock import expected_inputs
from services.gap_detector.core.definitions import Definitions
from services.gap_detector.core.logic import DetectorLogic
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.processor import DetectorProcessor, Evidence
from services.gap_detector.settings import GapDetectorSettings
from services.gap_detector.store import DetectorStore
from services.gap_detector.webhook import WebhookSender

log = logging.getLogger(__name__)
PENDING_EVERY_TICKS = 8  # ZCARD of the timer wheel every few ticks is plenty for a gauge
PARTITIONS_EVERY_S = 60.0


async def _unknown(_topic: str) -> int | None:
    return None


def alert_key(alert: dict[str, Any]) -> bytes:
    """The gap-alerts record key: the customer, or the drop-off cell for aggregate alerts."""
    if "customer_id" in alert:
        return str(alert["customer_id"]).encode()
    cell = f"dropoff:{alert['journey']['type']}:{alert['journey']['stage']}:{alert['evidence']['channel']}"
    return cell.encode()


def alert_headers(alert: dict[str, Any]) -> list[tuple[str, bytes]]:
    return ce_headers(
        b"dev.journeys.gap_alert.v1", b"journeys/gap-detector", alert["alert_id"], alert["detected_at"]
    )


class OutboxSink:
    """The processor's output on the loop's outbox: alerts acknowledged on return, dead letters queued
    (the loop flushes them before it commits the batch)."""

    def __init__(
        self,
        out: Outbox,
        settings: GapDetectorSettings,
        hook: WebhookSender | None,
        store: DetectorStore | None = None,
    ) -> None:
        self.out, self.s, self.hook, self.store = out, settings, hook, store

    async def publish(self, alerts: list[dict[str, Any]], docs: list[bytes]) -> None:
        topic = self.s.topic_gap_alerts
        if self.store is not None and any("customer_id" in a for a in alerts):
            # An alert agents acknowledged or resolved (the API keeps that apart, Keys.alert_handling) goes
            # out with it again: a severity update must not read as un-acknowledged (issue 14).
            alerts, docs = await with_handling(self.store.r, self.store.keys, alerts, docs)
        self.out.send(
            OutRecord(topic, alert_key(a), doc, alert_headers(a)) for a, doc in zip(alerts, docs, strict=True)
        )
        await self.out.flush()
        if self.hook is not None:
            for a in alerts:
                if a["type"] == "dropoff_spike":
                    self.hook.enqueue(a)

    def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        self.out.send([dead_letter(record, self.s.topic_dlq, reason, detail, now_ms())])


class DetectorHandler:
    """The loop's handler. On each tick it hands the processor its evidence: the loop's seen-through
    times and the partitions of its input topics (re-read every minute: partitions can be added)."""

    def __init__(
        self,
        settings: GapDetectorSettings,
        proc: DetectorProcessor,
        store: DetectorStore,
        metrics: DetectorMetrics,
        hook: WebhookSender | None,
    ) -> None:
        self.s, self.proc, self.store, self.m, self.hook = settings, proc, store, metrics, hook
        self.seen: Callable[[], dict[tuple[str, int], int]] = dict
        self.partition_count: Callable[[str], Awaitable[int | None]] = _unknown
        self.expected: list[str] = []
        self._expected_at = 0.0
        self.ticks = 0

    async def evidence(self) -> Evidence:
        if not self.expected or time.monotonic() - self._expected_at > PARTITIONS_EVERY_S:
            topics = (self.s.topic_stitched_events, self.s.topic_identity_merges)
            counts = {t: await self.partition_count(t) for t in topics}
            known = {t: n for t, n in counts.items() if n}
            self.expected = expected_inputs(known) if len(known) == len(topics) else []
            self._expected_at = time.monotonic()
        return Evidence({f"{t}:{p}": ms for (t, p), ms in self.seen().items()}, self.expected)

    async def handle(self, records: list[Record], out: Outbox) -> None:
        sink = OutboxSink(out, self.s, self.hook, self.store)
        merges_topic = self.s.topic_identity_merges
        merges = [r for r in records if r.topic == merges_topic]
        events = [r for r in records if r.topic != merges_topic] if merges else records
        if merges:  # a merge's loser folds in before the survivor's new events are judged
            await self.proc.on_merges(merges, sink)
        if events:
            await self.proc.on_events(events, sink)

    async def tick(self, out: Outbox) -> None:
        await self.proc.on_tick(OutboxSink(out, self.s, self.hook, self.store), await self.evidence())
        if self.ticks % PENDING_EVERY_TICKS == 0:
            self.m.pending_timers.set(await self.store.pending_timers())
        self.ticks += 1


def build(
    settings: GapDetectorSettings,
    defs: Definitions,
    metrics: DetectorMetrics,
    client: aioredis.Redis,
    before_commit: Callable[[Offsets], None] | None = None,
) -> tuple[KafkaLoop, DetectorHandler]:
    """The loop and its handler (``before_commit``: an observer for tests, see KafkaLoop)."""
    store = DetectorStore(
        client, Keys(settings.key_prefix), settings.retention_ms, settings.recent_alerts, settings.state_cache
    )
    hook = (
        WebhookSender(
            settings.webhook_url,
            settings.webhook_format,
            settings.webhook_queue,
            settings.webhook_retries,
            metrics,
        )
        if settings.webhook_url
        else None
    )
    proc = DetectorProcessor(
        settings,
        DetectorLogic(defs, settings.buffer_events, settings.lateness_ms),
        store,
        metrics,
        ClockStore(client, Keys(settings.key_prefix)),
    )
    handler = DetectorHandler(settings, proc, store, metrics, hook)
    loop = KafkaLoop(
        settings,
        group_id=settings.group_id,
        topics=[settings.topic_stitched_events, settings.topic_identity_merges],
        handler=handler,
        metrics=metrics.loop,
        batch_size=settings.batch_size,
        batch_window_s=settings.batch_window_s,
        tick_s=settings.tick_s,
        before_commit=before_commit,
    )
    handler.seen, handler.partition_count = loop.seen_through, loop.partition_count
    # Records the broker refuses for good (an alert too large for gap-alerts, a dead-letter copy too large
    # for the DLQ) are dead-lettered by the outbox itself (reason undeliverable).
    loop.outbox.on_dead_letter = lambda reason, n: metrics.dead_lettered.labels(reason).inc(n)
    return loop, handler


async def main(
    settings: GapDetectorSettings, defs: Definitions, metrics: DetectorMetrics, stop: asyncio.Event
) -> None:
    """Run the worker until ``stop`` is set (SIGTERM: the batch in flight finishes and is committed)."""
    # A RedisCluster when REDIS_URL names one; typed as Redis until the adapters take redis_conn.AsyncClient.
    client = cast(aioredis.Redis, connect(settings.redis_url, socket_timeout=10))
    loop, handler = build(settings, defs, metrics, client)
    tune_gc()
    hook_task = asyncio.create_task(handler.hook.run()) if handler.hook is not None else None
    log.info("gap detector ready (group %s)", settings.group_id)
    try:
        await loop.run(stop)
    finally:
        if hook_task is not None:
            hook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hook_task
        await client.aclose()
