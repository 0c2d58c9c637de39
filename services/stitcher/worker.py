"""The stitcher's batch handlers: the glue between faust events, the pure core and the Redis scripts.

Order of effects for one batch, and why redelivery is safe (at-least-once in, idempotent out):

1. decode/validate (pure), dead letters produced;
2. ONE identity script call resolves the whole batch atomically in Redis;
3. stitched events and merge records are produced, and every produce future is awaited;
4. only then does the handler return, and faust acks the batch's events (``take_events`` acks after
   the loop body); faust commits offsets of acked events only.

A crash anywhere before step 4 leaves the offsets uncommitted, so the batch is consumed again: the
identity script maps the same identifiers to the same customer (and replays recorded merge outcomes),
the stitched events carry the same event ids, and the journey script skips event ids already present.
Redis is written before the offset commit, never after, so nothing is lost and nothing duplicates.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from services.common.timeutil import format_ms, now_ms
from services.stitcher.adapters.kafka_batch import BatchSender, Header, OutRecord
from services.stitcher.adapters.redis_store import RedisStitchStore
from services.stitcher.adapters.retry import with_retry
from services.stitcher.core.batch import Raw, outputs, prepare
from services.stitcher.core.decode import DecodePolicy, Rejected
from services.stitcher.core.identifiers import Denylist
from services.stitcher.core.journey import DUPLICATE, WRITTEN
from services.stitcher.core.stitch import IdentifierHasher
from services.stitcher.metrics import (
    BATCH_SIZE,
    CONFLICTS,
    DEAD_LETTERED,
    DUPLICATES,
    E2E_LATENCY,
    EVENTS_IN,
    EVENTS_INVALID,
    MERGES,
    STAGE_LATENCY,
    STITCHED,
    TOUCHPOINTS_WRITTEN,
)
from services.stitcher.settings import StitcherSettings

log = logging.getLogger(__name__)


def ce_headers(ce_type: str, ce_id: str, ce_time: str) -> list[Header]:
    return [("ce_specversion", b"1.0"), ("ce_id", ce_id.encode()), ("ce_type", ce_type.encode()),
            ("ce_source", b"journeys/stitcher"), ("ce_time", ce_time.encode()),
            ("content-type", b"application/json")]


def dlq_headers(raw: Raw, rejected: Rejected, at_ms: int) -> list[Header]:
    own = [("dlq_reason", rejected.reason.encode()), ("dlq_detail", rejected.detail.encode()),
           ("dlq_source_topic", raw.topic.encode()), ("dlq_source_partition", str(raw.partition).encode()),
           ("dlq_source_offset", str(raw.offset).encode()), ("dlq_at_ms", str(at_ms).encode())]
    return own + [(k, v) for k, v in raw.headers.items() if not k.startswith("dlq_")]


class BatchHandlers:
    def __init__(self, settings: StitcherSettings, store: RedisStitchStore, sender: BatchSender) -> None:
        self.s, self.store, self.sender = settings, store, sender
        self.hasher = IdentifierHasher(settings.secret_bytes(), settings.phone_region,
                                       Denylist.from_settings(settings), settings.identifier_cache)
        self.policy = DecodePolicy(settings.max_event_bytes, settings.max_future_skew_ms,
                                   settings.max_event_age_ms)

    async def identity_batch(self, raws: Sequence[Raw]) -> None:
        """channel-events -> (DLQ | identity script -> stitched-events + identity-merges)."""
        t0 = time.perf_counter()
        now = now_ms()
        split = prepare(raws, self.hasher, now, self.policy)
        t1 = time.perf_counter()
        pending: list[OutRecord] = []
        for raw, rejected in split.rejected:
            EVENTS_INVALID.labels(reason=rejected.reason).inc()
            DEAD_LETTERED.labels(reason=rejected.reason).inc()
            pending.append(OutRecord(self.s.topic_dlq, raw.key, raw.value, None,
                                     dlq_headers(raw, rejected, now)))
        resolutions = await with_retry(lambda: self.store.resolve(split.ready, now), "redis")
        t2 = time.perf_counter()
        out = outputs(split.ready, resolutions, now)
        for prep, st in zip(split.ready, out.stitched, strict=True):
            pending.append(self._stitched_record(st, prep.raw.timestamp_ms))
        pending += [self._merge_record(rec) for rec in out.merges]
        await with_retry(lambda: self.sender.send_all(pending), "kafka")
        t3 = time.perf_counter()
        STITCHED.inc(len(out.stitched))
        MERGES.inc(out.merge_count)
        for id_type in out.conflict_types:
            CONFLICTS.labels(id_type=id_type).inc()
        # Metrics per batch, not per event: a labelled child lookup costs as much as decoding an event.
        for channel, n in Counter(st["channel"] for st in out.stitched).items():
            EVENTS_IN.labels(channel=channel).inc(n)
        _observe_since(E2E_LATENCY.labels(step="stitched"), [p.raw.timestamp_ms for p in split.ready])
        _stage("decode", t1 - t0)
        _stage("identity", t2 - t1)
        _stage("produce", t3 - t2)
        BATCH_SIZE.labels(stage="identity").observe(len(raws))

    def _stitched_record(self, st: dict[str, Any], source_ts_ms: int) -> OutRecord:
        # It keeps the channel event's Kafka timestamp: end-to-end latency is measurable downstream.
        return OutRecord(self.s.topic_stitched_events, st["customer_id"].encode(), orjson.dumps(st),
                         source_ts_ms or None,
                         ce_headers("dev.journeys.stitched_event.v1", st["event_id"], st["occurred_at"]))

    def _merge_record(self, rec: dict[str, Any]) -> OutRecord:
        return OutRecord(self.s.topic_identity_merges, rec["survivor"].encode(), orjson.dumps(rec), None,
                         ce_headers("dev.journeys.identity_merge.v1", rec["record_id"],
                                    format_ms(rec["recorded_at_ms"])))

    async def journey_batch(self, values: Sequence[bytes | None], timestamps_ms: Sequence[int]) -> None:
        """stitched-events -> one journey script call. Offsets are committed after it returns (see top)."""
        t0 = time.perf_counter()
        stitched, stamps = [], []
        for value, ts in zip(values, timestamps_ms, strict=True):
            try:
                stitched.append(orjson.loads(value or b""))
                stamps.append(ts)
            except orjson.JSONDecodeError:
                # Our own topic: garbage here is a bug elsewhere; count it, never stop for it.
                EVENTS_INVALID.labels(reason="malformed_json").inc()
                log.warning("skipped a malformed stitched event")
        statuses = await with_retry(lambda: self.store.write(stitched), "redis")
        TOUCHPOINTS_WRITTEN.inc(statuses.count(WRITTEN))
        DUPLICATES.inc(statuses.count(DUPLICATE))
        _observe_since(E2E_LATENCY.labels(step="journey"), stamps)
        _stage("journey_write", time.perf_counter() - t0)
        BATCH_SIZE.labels(stage="journey_write").observe(len(values))


def _observe_since(hist: Any, stamps_ms: Sequence[int]) -> None:
    wall_ms = time.time() * 1000
    for ts in stamps_ms:
        if ts:
            hist.observe(max(0.0, (wall_ms - ts) / 1000))


def _stage(stage: str, seconds: float) -> None:
    STAGE_LATENCY.labels(stage=stage).observe(seconds)
