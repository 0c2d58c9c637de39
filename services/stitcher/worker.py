"""The stitcher worker: one consumer group on the project's one Kafka loop (services/common/kafka_loop)
reading channel-events.

Per batch (``StitchHandler.handle``), in this order:

1. prepare (pure): decode, validate, identifiers, touchpoint JSON; bad input becomes dead letters;
2. the store (adapters/redis_store.py): every event's customer resolved in the identity graph (one
   script call, atomic, in offset order), then its touchpoint written into that customer's journey (one
   call per hash slot; merged-away journeys folded in first);
3. dead letters, stitched events (for the gap detector) and merge records queued on the loop's outbox.

The loop then flushes the outbox (every record acknowledged by the broker) and only then commits the
batch's offsets. A crash anywhere before that commit means the batch is consumed again: the store maps
the same identifiers to the same customers, replays the recorded merges and conflicts, and finds every
touchpoint already in its journey; the records produced again carry the same event and record ids. Redis
is written before the offsets are committed, never after: nothing is lost, no touchpoint is doubled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol, cast

import redis.asyncio as aioredis

from services.common.dead_letter import dead_letter
from services.common.kafka_loop import KafkaLoop, Offsets, Outbox, Record
from services.common.keys import Keys
from services.common.progress import ProgressTracker
from services.common.redis_conn import connect
from services.common.runtime import tune_gc
from services.common.timeutil import now_ms
from services.stitcher.adapters.progress_store import ProgressStore
from services.stitcher.adapters.redis_store import RedisStitchStore
from services.stitcher.core.batch import OutTopics, Prepared, outputs, prepare, rejected_by_reason
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.hashed_identifiers import IdentifierHasher
from services.stitcher.core.identifiers import Denylist
from services.stitcher.core.journey import DUPLICATE, WRITTEN, Stitched
from services.stitcher.core.scrub import AttributePolicy
from services.stitcher.metrics import StitcherMetrics
from services.stitcher.settings import StitcherSettings

log = logging.getLogger(__name__)
LATENCY_SAMPLES = 32  # end-to-end latency observations per batch at most (evenly spread over the batch)
PROGRESS_EVERY_S = 0.25  # how often the stitcher publishes its evidence (one small script call)
PARTITIONS_EVERY_S = 60.0  # how often the input topic's partition count is read again


class ProgressReporter:
    """Publishes the tracker's evidence with the loop's seen-through times and the input's partition
    count (a stall must wait for every partition that could carry its successor)."""

    def __init__(self, store: ProgressStore, loop: KafkaLoop, topic: str) -> None:
        self.store, self.loop, self.topic = store, loop, topic
        self.partitions: int | None = None
        self._counted_at = 0.0

    async def publish(self, tracker: ProgressTracker) -> None:
        count = None
        if self.partitions is None or time.monotonic() - self._counted_at > PARTITIONS_EVERY_S:
            count = await self.loop.partition_count(self.topic)
            self._counted_at = time.monotonic()
            if count == self.partitions:
                count = None  # unchanged: not written again
        seen = {p: ms for (t, p), ms in self.loop.seen_through().items() if t == self.topic}
        reports = tracker.unreported(seen)
        if reports or count is not None:
            await self.store.publish(count, reports)
            tracker.reported(reports)
            if count is not None:
                self.partitions = count


class Store(Protocol):
    async def stitch(self, batch: Sequence[Prepared], now_ms: int) -> list[Stitched]: ...


class StitchHandler:
    """The loop's handler: channel events in, one script call, records out. Metrics once per batch."""

    def __init__(self, settings: StitcherSettings, store: Store, metrics: StitcherMetrics) -> None:
        self.s, self.store, self.m = settings, store, metrics
        self.hasher = IdentifierHasher(
            settings.secret_bytes(),
            settings.phone_region,
            Denylist.from_settings(settings),
            settings.identifier_cache,
        )
        attributes = AttributePolicy.parse(settings.attributes_allow, settings.attributes_scrub)
        self.policy = DecodePolicy(
            settings.max_event_bytes, settings.max_future_skew_ms, settings.max_event_age_ms, attributes
        )
        self.topics = OutTopics(settings.topic_stitched_events, settings.topic_identity_merges)
        self._t_decode, self._t_stitch = metrics.stage.labels("decode"), metrics.stage.labels("stitch")
        self._t_outputs, self._size = metrics.stage.labels("outputs"), metrics.batch.labels("stitch")
        self._e2e = metrics.e2e.labels("journey")
        # Evidence for the gap detector's stall timers (services/common/progress.py): set up by build().
        self.progress = ProgressTracker()
        self.reporter: ProgressReporter | None = None

    async def handle(self, records: list[Record], out: Outbox) -> None:
        t0 = time.perf_counter()
        now = now_ms()
        split = prepare(records, self.hasher, now, self.policy)
        ready = split.ready
        t1 = time.perf_counter()
        done = await self.store.stitch(ready, now) if ready else []
        t2 = time.perf_counter()
        # Nothing is queued before the script succeeded: a failed call retries the batch, and records
        # already handed to the producer would go out twice.
        if split.rejected:
            dlq = self.s.topic_dlq
            out.send([dead_letter(raw, dlq, r.reason, r.detail, now) for raw, r in split.rejected])
        if ready:
            observe = self.progress.observe
            for p in ready:
                observe(p.raw.partition, p.occurred_ms)
            stitched, merges, stats = outputs(ready, [d.resolution for d in done], now, self.topics)
            out.send(stitched)
            if merges:
                out.send(merges)
            self._count(done, stats.by_channel, stats.conflicts, stats.merges)
            self._latency(ready)
        m = self.m
        for reason, n in rejected_by_reason(split.rejected).items():
            m.invalid.labels(reason).inc(n)
            m.dead_lettered.labels(reason).inc(n)
        self._t_decode.observe(t1 - t0)
        self._t_stitch.observe(t2 - t1)
        self._t_outputs.observe(time.perf_counter() - t2)
        self._size.observe(len(records))

    def committed(self, offsets: Offsets) -> None:
        """The loop committed these offsets: what their batch stitched is now evidence."""
        self.progress.committed([p for _, p in offsets], now_ms())

    async def tick(self, _out: Outbox) -> None:
        if self.reporter is not None:
            await self.reporter.publish(self.progress)

    def _count(
        self, done: list[Stitched], by_channel: dict[str, int], conflicts: dict[str, int], merges: int
    ) -> None:
        m = self.m
        statuses = [d.status for d in done]
        m.stitched.inc(len(done))
        m.written.inc(statuses.count(WRITTEN))
        m.duplicates.inc(statuses.count(DUPLICATE))
        m.merges.inc(merges)
        for channel, n in by_channel.items():
            m.events_in.labels(channel).inc(n)
        for id_type, n in conflicts.items():
            m.conflicts.labels(id_type).inc(n)

    def _latency(self, ready: list[Prepared]) -> None:
        """Kafka timestamp of the channel event -> its touchpoint written, for a sample of the batch: the
        histogram's quantiles stay those of events while its cost stays per batch."""
        wall_ms = time.time() * 1000
        step = max(1, len(ready) // LATENCY_SAMPLES)
        for p in ready[::step]:
            ts = p.raw.timestamp_ms
            if ts:
                self._e2e.observe(max(0.0, (wall_ms - ts) / 1000))


def build(
    settings: StitcherSettings,
    metrics: StitcherMetrics,
    client: aioredis.Redis,
    before_commit: Callable[[Offsets], None] | None = None,
) -> tuple[KafkaLoop, StitchHandler]:
    """The loop and its handler (``before_commit``: an observer for tests, see KafkaLoop)."""
    store = RedisStitchStore(
        client, Keys(settings.key_prefix), settings.limits, settings.max_touchpoints, settings.retention_ms
    )
    handler = StitchHandler(settings, store, metrics)
    loop = KafkaLoop(
        settings,
        group_id=settings.group_id,
        topics=[settings.topic_channel_events],
        handler=handler,
        metrics=metrics.loop,
        batch_size=settings.batch_size,
        batch_window_s=settings.batch_window_s,
        tick_s=PROGRESS_EVERY_S,
        on_commit=handler.committed,
        before_commit=before_commit,
    )
    handler.reporter = ProgressReporter(
        ProgressStore(client, Keys(settings.key_prefix)), loop, settings.topic_channel_events
    )
    # Records the broker refuses for good are dead-lettered by the outbox itself (reason undeliverable).
    loop.outbox.on_dead_letter = lambda reason, n: metrics.dead_lettered.labels(reason).inc(n)
    return loop, handler


async def main(
    settings: StitcherSettings,
    metrics: StitcherMetrics,
    stop: asyncio.Event,
    before_commit: Callable[[Offsets], None] | None = None,
) -> None:
    """Run the worker until ``stop`` is set (SIGTERM: the batch in flight finishes and is committed)."""
    # A RedisCluster when REDIS_URL names one; typed as Redis until the adapters take redis_conn.AsyncClient.
    client = cast(aioredis.Redis, connect(settings.redis_url, socket_timeout=30))
    loop, _ = build(settings, metrics, client, before_commit)
    tune_gc()
    log.info("stitcher ready (group %s)", settings.group_id)
    try:
        await loop.run(stop)
    finally:
        await client.aclose()
