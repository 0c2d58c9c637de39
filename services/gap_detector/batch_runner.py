"""An alternative runner (JOURNEYS_DETECTOR_RUNNER=batch): the same processor fed by plain aiokafka
consumers, whole ``getmany`` batches at a time.

faust hands records to streams one by one (several asyncio tasks per record), which costs more CPU than
the rules themselves; this runner skips that. Same core, Lua, dead letters and metrics. Offsets are
committed only after the processor returned, i.e. after the alerts were acknowledged by Kafka and the
batch's Redis writes were applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import CommitFailedError

from services.common.keys import Keys
from services.common.timeutil import now_ms
from services.gap_detector.app import alert_headers, alert_key, retrying
from services.gap_detector.core.definitions import load_definitions
from services.gap_detector.core.logic import DetectorLogic
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.processor import DetectorProcessor, Record
from services.gap_detector.settings import GapDetectorSettings
from services.gap_detector.store import DetectorStore
from services.gap_detector.webhook import WebhookSender

log = logging.getLogger(__name__)
LAG_EVERY = 50


def run(settings: GapDetectorSettings, metrics: DetectorMetrics) -> None:
    """Run until SIGINT/SIGTERM; the batch in flight finishes (or stays uncommitted) before exit."""
    asyncio.run(_main(settings, metrics))


async def _main(s: GapDetectorSettings, m: DetectorMetrics) -> None:
    defs = load_definitions(s.definitions)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    servers = s.kafka_bootstrap_servers.split(",")
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=1, acks="all")
    await producer.start()
    client = aioredis.Redis.from_url(s.redis_url, socket_timeout=10)
    store = DetectorStore(client, Keys(s.key_prefix), s.retention_ms, s.recent_alerts)
    hook = WebhookSender(s.webhook_url, s.webhook_format, s.webhook_queue, s.webhook_retries, m) \
        if s.webhook_url else None

    async def publish(alerts: list[dict[str, Any]]) -> None:
        futures = [await producer.send(s.topic_gap_alerts, orjson.dumps(a), key=alert_key(a).encode(),
                                       headers=list(alert_headers(a).items())) for a in alerts]
        for a in alerts:
            if hook is not None and a["type"] == "dropoff_spike":
                hook.enqueue(a)
        await asyncio.gather(*futures)  # acknowledged before the batch's Redis writes

    async def dead_letter(rec: Record, reason: str, detail: str) -> None:
        headers = [("dlq_reason", reason.encode()), ("dlq_detail", detail.encode()),
                   ("dlq_source_topic", rec.topic.encode()),
                   ("dlq_source_partition", str(rec.partition).encode()),
                   ("dlq_source_offset", str(rec.offset).encode()), ("dlq_at_ms", str(now_ms()).encode())]
        await (await producer.send(s.topic_dlq, rec.value, key=rec.key, headers=headers))

    proc = DetectorProcessor(s, DetectorLogic(defs, s.buffer_events, s.lateness_ms), store, m, publish,
                             dead_letter)
    tasks = [asyncio.create_task(_ticks(proc, store, m, s.tick_s, stop))]
    if hook is not None:
        tasks.append(asyncio.create_task(hook.run()))
    log.info("gap detector ready (batch runner)")
    try:
        await asyncio.gather(
            _consume(s, s.topic_stitched_events, "events", proc.on_events, m, stop, proc.touch),
            _consume(s, s.topic_identity_merges, "merges", lambda r, busy: proc.on_merges(r), m, stop, None),
        )
    finally:
        for task in tasks:
            task.cancel()
        await producer.stop()
        await client.aclose()


async def _ticks(proc: DetectorProcessor, store: DetectorStore, m: DetectorMetrics, every_s: float,
                 stop: asyncio.Event) -> None:
    n = 0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        await retrying(proc.on_tick, m)
        n += 1
        if n % 8 == 0:
            m.pending_timers.set(await retrying(store.pending_timers, m))
        # The next tick is due one interval after this one started (at once when firing took longer).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, started + every_s - loop.time()))


async def _consume(s: GapDetectorSettings, topic: str, role: str,
                   handler: Callable[[Sequence[Record], Sequence[str]], Awaitable[int]], m: DetectorMetrics,
                   stop: asyncio.Event, touch: Callable[[Sequence[str]], Awaitable[None]] | None) -> None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=s.kafka_bootstrap_servers.split(","), group_id=f"{s.group_id}-{role}",
        enable_auto_commit=False, auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    polls = 0
    try:
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=100, max_records=s.batch_size)
            records = [_record(r) for batch in fetched.values() for r in batch]
            busy = await _behind(consumer) if touch is not None else []
            if records:
                await retrying(lambda records=records, busy=busy: handler(records, busy), m)  # type: ignore[misc]
            elif busy and touch is not None:
                await retrying(lambda busy=busy: touch(busy), m)  # type: ignore[misc]
                try:
                    await consumer.commit()
                except CommitFailedError:
                    log.warning("offset commit lost to a rebalance; the batch will be redelivered")
            polls += 1
            if polls % LAG_EVERY == 0:
                lag = 0
                for tp in consumer.assignment():
                    high = consumer.highwater(tp)
                    if high is not None:
                        lag += max(0, high - await consumer.position(tp))
                m.lag.labels(topic).set(lag)
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer) -> list[str]:
    """Assigned partitions whose consumer position is still behind the head."""
    out = []
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is not None and high > await consumer.position(tp):
            out.append(str(tp.partition))
    return out


def _record(r: ConsumerRecord) -> Record:
    return Record(r.key, r.value, r.timestamp or None, r.topic, r.partition, r.offset)
