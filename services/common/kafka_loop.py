"""The one Kafka loop of a service: consume → handle the batch → produce and await → commit → repeat.

Every service (stitcher, gap detector) runs exactly this loop; the commit rule lives here and nowhere
else. One batch at a time, in this order:

1. ``consume``: up to ``batch_size`` records (waiting for the first one, then ``batch_window_s`` at most
   for more); records carry topic, partition, offset, key, value, headers and the Kafka timestamp;
2. ``handler.handle(records, outbox)``: the service's Redis writes, queueing what it produces in the
   outbox (it may ``await outbox.flush()`` itself when a produce must be acknowledged before a later write);
3. ``outbox.flush()``: every produced record acknowledged by the broker (acks=all, idempotent producer);
4. commit, synchronously, the explicit offsets ``last handled + 1`` of every partition in the batch.

A batch whose handling or delivery fails is retried as it is (same records, backoff up to 5 s) and never
committed past, so a crash or a bounce anywhere before step 4 means the batch is consumed again: handlers
are idempotent (every Redis write is keyed). Because the commit of a batch completes before the next
``consume``, nothing handled is ever left uncommitted when partitions are revoked in a rebalance (the
rebalance callbacks run inside ``consume``). SIGTERM finishes the batch in flight, commits it and exits.

confluent-kafka (librdkafka) is the client: its C consumer and producer cost a fraction of aiokafka's per
record (bench/). Its blocking calls run in a worker thread so the event loop stays free; only public API.
LOOP_API_READY
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from services.common.kafka_config import consumer_config, producer_config
from services.common.loop_metrics import LoopMetrics
from services.common.outbox import DeliveryFailed, Outbox, OutRecord, Record
from services.common.retry import MAX_DELAY_S, RateLimitedLog, target_of
from services.common.settings import CommonSettings

__all__ = [
    "ConsumerFenced",
    "DeliveryFailed",
    "Handler",
    "KafkaLoop",
    "Offsets",
    "OutRecord",
    "Outbox",
    "Record",
]  # the records and the outbox live in outbox.py
log = logging.getLogger(__name__)
Offsets = dict[tuple[str, int], int]


class ConsumerFenced(RuntimeError):
    """The consumer hit a fatal error (typically fenced by a worker with the same group.instance.id)."""


class Handler(Protocol):
    async def handle(self, records: list[Record], out: Outbox) -> None: ...


class Ticking(Protocol):
    async def tick(self, out: Outbox) -> None: ...


class KafkaLoop:
    def __init__(
        self,
        settings: CommonSettings,
        *,
        group_id: str,
        topics: Sequence[str],
        handler: Handler,
        metrics: LoopMetrics,
        batch_size: int = 1000,
        batch_window_s: float = 0.01,
        tick_s: float | None = None,
        on_commit: Callable[[Offsets], None] | None = None,
        before_commit: Callable[[Offsets], None] | None = None,
        lag_every_s: float = 1.0,
    ) -> None:
        self.topics, self.handler, self.m = list(topics), handler, metrics
        self.batch_size, self.window_s, self.tick_s = batch_size, batch_window_s, tick_s
        # Observers of every commit (tests, the chaos suite): before it is sent and once it succeeded.
        self.on_commit, self.before_commit, self.lag_every_s = on_commit, before_commit, lag_every_s
        self._consumer = Consumer(consumer_config(settings, group_id))
        self._producer = Producer(producer_config(settings))
        self.outbox = Outbox(self._producer, dlq_topic=settings.topic_dlq)
        self._assigned: set[tuple[str, int]] = set()
        # Evidence of progress (see seen_through): per partition the wall time (ms) read just before a
        # fresh high watermark, that watermark, and the newest such time whose watermark was committed.
        self._probe: dict[tuple[str, int], tuple[int, int]] = {}
        self._seen: dict[tuple[str, int], int] = {}
        self._errors = RateLimitedLog(log)
        self._next_lag = 0.0

    # -- the loop --------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Consume, handle, flush, commit until ``stop`` is set; then close the consumer and producer."""
        self._consumer.subscribe(
            self.topics, on_assign=self._assign, on_revoke=self._revoke, on_lost=self._revoke
        )
        next_tick = time.monotonic()
        self._next_lag = next_tick + self.lag_every_s
        try:
            while not stop.is_set():
                wait = 0.25 if self.tick_s is None else max(0.0, min(0.25, next_tick - time.monotonic()))
                records = await self._consume(wait)
                if records and await self._until_done(functools.partial(self._handle, records), stop):
                    await self._commit(records)
                now = time.monotonic()
                if self.tick_s is not None and now >= next_tick:
                    await self._until_done(self._tick, stop)
                    next_tick = now + self.tick_s
                await self._lag_if_due()
        finally:
            await self._close()

    async def _handle(self, records: list[Record]) -> None:
        await self.handler.handle(records, self.outbox)
        await self.outbox.flush()

    async def _tick(self) -> None:
        await self.handler.tick(self.outbox)  # type: ignore[attr-defined]
        await self.outbox.flush()

    async def _until_done(self, attempt: Callable[[], Awaitable[None]], stop: asyncio.Event) -> bool:
        """Run ``attempt`` until it succeeds (True) or ``stop`` is set while it keeps failing (False)."""
        delay = 0.05
        while True:
            try:
                await attempt()
                return True
            except Exception as exc:
                target = target_of(exc)
                self.m.retries.labels(target=target).inc()
                self._errors.warn(
                    f"{target} failure, batch retried (never committed past)",
                    exc,
                    traceback=target == "handler",
                )
            await self._lag_if_due()  # a stuck batch must show as growing lag
            try:  # back off, but a stop request ends the wait (the batch stays uncommitted)
                await asyncio.wait_for(stop.wait(), timeout=delay)
                return False
            except TimeoutError:
                delay = min(delay * 2, MAX_DELAY_S)

    # -- Kafka calls -----------------------------------------------------------------------------------
    async def _consume(self, wait_s: float) -> list[Record]:
        """Up to batch_size records: what is buffered now, else the first to arrive within ``wait_s`` and
        then what arrives within the batch window."""
        msgs = self._consumer.consume(self.batch_size, 0)
        if not msgs and wait_s > 0:
            loop = asyncio.get_running_loop()
            first = await loop.run_in_executor(None, self._consumer.poll, wait_s)
            if first is None:
                return []
            msgs = [first, *self._consumer.consume(self.batch_size - 1, 0)]
            if len(msgs) < self.batch_size and self.window_s > 0:
                msgs += await loop.run_in_executor(
                    None, self._consumer.consume, self.batch_size - len(msgs), self.window_s
                )
        out = []
        for m in msgs:
            err = m.error()
            if err is not None and (err.fatal() or err.code() == KafkaError._FATAL):
                # E.g. fenced: another live worker joined under this one's static name. This consumer will
                # never receive a record again; exit so that a supervisor notices (never live on idle).
                raise ConsumerFenced(f"Kafka consumer unusable for good: {err.str()}")
            if err is not None:  # e.g. a subscribed topic that does not exist yet (no EOF events: off)
                self._errors.warn("consumer error", KafkaException(err))
                continue
            try:
                headers = cast(list[tuple[str, bytes | None]] | None, m.headers())
            except ValueError:  # a header name that is not UTF-8 (another client wrote it): the record stays
                headers = None
            # A consumed message (not an error: skipped above) always has these; the stubs say Optional.
            where = cast(tuple[str, int, int], (m.topic(), m.partition(), m.offset()))
            out.append(
                Record(
                    *where,
                    m.key(),
                    m.value(),
                    {k: v or b"" for k, v in headers} if headers else {},
                    max(0, m.timestamp()[1]),
                )
            )
        return out

    async def _commit(self, records: Sequence[Record]) -> None:
        offsets: Offsets = {}
        for r in records:  # offsets only grow within a partition, so the last one wins
            offsets[(r.topic, r.partition)] = r.offset + 1
        if self.before_commit is not None:
            self.before_commit(offsets)
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        loop = asyncio.get_running_loop()
        try:
            done = await loop.run_in_executor(
                None, lambda: self._consumer.commit(offsets=tps, asynchronous=False)
            )
        except KafkaException as exc:
            # Typically a rebalance took the partitions away: their new owner consumes the batch again.
            self._errors.warn("offset commit failed; the batch will be redelivered", exc)
            return
        failed = [tp for tp in done or () if tp.error is not None]
        if failed:
            self._errors.warn(
                f"offset commit failed for {len(failed)} partitions", KafkaException(failed[0].error)
            )
            lost = {(tp.topic, tp.partition) for tp in failed}
            offsets = {k: v for k, v in offsets.items() if k not in lost}
        for key, offset in offsets.items():
            self._confirm(key, offset)
        if self.on_commit is not None and offsets:
            self.on_commit(offsets)

    def assigned(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs this worker holds now."""
        return sorted(self._assigned)

    async def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has (cluster metadata), None when the broker did not say."""
        loop = asyncio.get_running_loop()
        try:
            meta = await loop.run_in_executor(None, functools.partial(self._consumer.list_topics, topic, 5.0))
        except KafkaException as exc:
            self._errors.warn("topic metadata not read", exc)
            return None
        found = meta.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return None
        return len(found.partitions)

    def seen_through(self) -> dict[tuple[str, int], int]:
        """Per assigned partition, a wall time (epoch ms) before which every record appended to it has been
        handled, flushed and committed by this worker; a partition without such evidence yet is absent.

        How it is known: every ``lag_every_s`` the loop notes the time, then reads the partition's high
        watermark afresh; once the committed offset reaches that watermark, the noted time is proven (so
        it advances under constant traffic too, a batch or two behind). Downstream stages use it to tell
        "nothing arrived" from "not read yet" (the gap detector's stall evidence)."""
        return {k: v for k, v in self._seen.items() if k in self._assigned}

    def _confirm(self, key: tuple[str, int], committed: int) -> None:
        probe = self._probe.get(key)
        if probe is not None and committed >= probe[1] and probe[0] > self._seen.get(key, -1):
            self._seen[key] = probe[0]

    async def _lag_if_due(self) -> None:
        if time.monotonic() >= self._next_lag:
            await self._report_lag()
            self._next_lag = time.monotonic() + self.lag_every_s

    async def _report_lag(self) -> None:
        """journeys_consumer_lag_messages: high watermark minus the group's committed offset, per topic."""
        tps = [TopicPartition(t, p) for t, p in sorted(self._assigned)]
        lag = dict.fromkeys(self.topics, 0)
        if tps:
            loop = asyncio.get_running_loop()
            try:
                noted = int(time.time() * 1000)  # before the watermarks are read: what they cover
                committed = await loop.run_in_executor(None, self._consumer.committed, tps, 5.0)
                for tp in committed:
                    low, high = await loop.run_in_executor(
                        None, functools.partial(self._consumer.get_watermark_offsets, tp, 5.0, False)
                    )
                    base = tp.offset if tp.offset >= 0 else low
                    lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - base)
                    key = (tp.topic, tp.partition)
                    self._probe[key] = (noted, high)
                    self._confirm(key, base)
            except KafkaException as exc:
                self._errors.warn("lag not measured", exc)
                return
        for topic, value in lag.items():
            self.m.lag.labels(topic=topic).set(value)

    def _assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        log.info("assigned %s", _names(partitions))

    def _revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Nothing handled is uncommitted here: a batch's commit completes before the next consume().
        self._assigned -= {(tp.topic, tp.partition) for tp in partitions}
        for tp in partitions:
            for known in (self._probe, self._seen):
                known.pop((tp.topic, tp.partition), None)
        log.info("revoked %s", _names(partitions))

    async def _close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._consumer.close)  # leaves the group at once
        await loop.run_in_executor(None, self._producer.flush, 10.0)


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
