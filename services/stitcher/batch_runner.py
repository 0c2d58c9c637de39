"""An alternative runner: the same handlers fed by plain aiokafka consumers, batch by batch.

faust's consumer hands records to streams one at a time (two asyncio tasks per record in
``Consumer._drain_messages``), which costs more CPU than stitching itself; this runner takes whole
``getmany`` batches instead. Same core, same Lua, same DLQ/metrics; selected with
JOURNEYS_STITCHER_RUNNER=batch. Offsets are committed with ``consumer.commit()`` only after the batch
handler returned, i.e. after its Redis script and every produce ack (see worker.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import CommitFailedError

from services.common.keys import Keys
from services.stitcher.adapters.kafka_batch import BatchSender
from services.stitcher.adapters.redis_store import RedisStitchStore
from services.stitcher.adapters.retry import with_retry
from services.stitcher.core.batch import Raw
from services.stitcher.metrics import CONSUMER_LAG
from services.stitcher.settings import StitcherSettings
from services.stitcher.worker import BatchHandlers

log = logging.getLogger(__name__)
Handler = Callable[[Sequence[ConsumerRecord]], Awaitable[None]]


def run(settings: StitcherSettings) -> None:
    """Run until SIGINT/SIGTERM; the batch in flight finishes (or stays uncommitted) before exit."""
    asyncio.run(_main(settings))


async def _main(settings: StitcherSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    servers = settings.kafka_bootstrap_servers.split(",")
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=2, acks="all",
                                max_request_size=4 * 1024 * 1024)
    await producer.start()
    client = aioredis.Redis.from_url(settings.redis_url)
    store = RedisStitchStore(client, Keys(settings.key_prefix), settings.limits, settings.max_touchpoints,
                             settings.retention_ms)
    handlers = BatchHandlers(settings, store, BatchSender(lambda: producer))

    async def identity(records: Sequence[ConsumerRecord]) -> None:
        await handlers.identity_batch([_raw(r) for r in records])

    async def journey(records: Sequence[ConsumerRecord]) -> None:
        await handlers.journey_batch([r.value for r in records], [r.timestamp or 0 for r in records])

    loops = []
    if "identity" in settings.agent_names:
        loops.append(_consume(settings, settings.topic_channel_events, "identity", identity, stop))
    if "journey" in settings.agent_names:
        loops.append(_consume(settings, settings.topic_stitched_events, "journey", journey, stop))
    log.info("stitcher ready (batch runner)")
    try:
        await asyncio.gather(*loops)
    finally:
        await producer.stop()
        await client.aclose()


async def _consume(settings: StitcherSettings, topic: str, role: str, handler: Handler,
                   stop: asyncio.Event) -> None:
    timeout_ms = int(settings.session_timeout_s * 1000)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        group_id=f"{settings.group_id}-{role}", enable_auto_commit=False, auto_offset_reset="earliest",
        session_timeout_ms=timeout_ms, heartbeat_interval_ms=min(3000, timeout_ms // 3),
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    polls = 0
    try:
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=100, max_records=settings.batch_size)
            records = [r for batch in fetched.values() for r in batch]
            if records:
                # Redis writes and produce acks happen inside the handler; only then the commit.
                await handler(records)
                await _commit(consumer)
            polls += 1
            if polls % 50 == 0:
                await _report_lag(consumer, topic)
    finally:
        await consumer.stop()


async def _commit(consumer: AIOKafkaConsumer) -> None:
    try:
        await with_retry(consumer.commit, "kafka")
    except CommitFailedError:
        # A rebalance took the partitions away: the new owner re-reads the batch; writes are idempotent.
        log.warning("offset commit lost to a rebalance; the batch will be redelivered")


def _raw(r: ConsumerRecord) -> Raw:
    headers = {k: (v or b"") for k, v in (r.headers or ())}
    return Raw(r.value, r.key, headers, r.topic, r.partition, r.offset, r.timestamp or 0)


async def _report_lag(consumer: AIOKafkaConsumer, topic: str) -> None:
    lag = 0
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is not None:
            lag += max(0, high - await consumer.position(tp))
    CONSUMER_LAG.labels(topic=topic).set(lag)
