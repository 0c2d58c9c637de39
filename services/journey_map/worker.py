"""The journey-map worker: one consumer group on the project's one Kafka loop (services/common/kafka_loop)
reading stitched-events, identity-merges and gap-alerts, keeping the map's counters in Redis.

Per batch: decode (records the map cannot use are counted and skipped: the detector dead-letters bad
stitched events already), load the state of every customer named, plan the batch with the pure core
(``core/batch.py``), then one compare-and-set script call per group of customers writes their states
with the map deltas. The loop commits only after ``handle`` returned; a batch consumed again changes
nothing (every event and alert is already in its customer's state), a conflict retries it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

import msgspec
import orjson

from services.common.documents import decode_alert
from services.common.kafka_loop import KafkaLoop, Outbox, Record
from services.common.limits import MAX_ALIAS_HOPS
from services.common.record_codec import decode_merge, decode_stitched
from services.common.records import RecordError
from services.common.redis_conn import AsyncClient, connect
from services.common.rfc3339 import rfc3339_ms
from services.common.runtime import tune_gc
from services.gap_detector.core.definitions import Definitions
from services.journey_map.core.batch import AlertIn, EventIn, Input, MergeIn, apply, missing_targets, names
from services.journey_map.core.bounds import Bounds
from services.journey_map.core.contribution import Delta
from services.journey_map.core.state import alert_from_doc, alert_owner, ev_from_record
from services.journey_map.keys import MapKeys
from services.journey_map.metrics import MapMetrics
from services.journey_map.settings import JourneyMapSettings
from services.journey_map.store import Conflict, MapStore

log = logging.getLogger(__name__)
MAX_ROUNDS = MAX_ALIAS_HOPS  # tombstone hops followed while loading (chains are short: a round each)


def bounds_of(settings: JourneyMapSettings, defs: Definitions) -> Bounds:
    n = JourneyMapSettings.names
    return Bounds.from_definitions(
        defs, n(settings.map_personas), n(settings.map_departments), n(settings.map_emotions)
    )


class MapHandler:
    def __init__(
        self, settings: JourneyMapSettings, bounds: Bounds, store: MapStore, metrics: MapMetrics
    ) -> None:
        self.s, self.bounds, self.store, self.m = settings, bounds, store, metrics
        self.counted = {kind: metrics.records.labels(kind) for kind in ("event", "merge", "alert")}

    def decode(self, records: list[Record]) -> list[Input]:
        out: list[Input] = []
        for r in records:
            try:
                if r.topic == self.s.topic_identity_merges:
                    merge = decode_merge(r.value or b"")
                    if merge.kind == "merge":
                        out.append(MergeIn(merge.survivor, merge.loser))
                        self.counted["merge"].inc()
                elif r.topic == self.s.topic_gap_alerts:
                    doc = decode_alert(r.value or b"")
                    t = rfc3339_ms(doc.occurred_at)
                    alert = alert_from_doc(doc, self.bounds, t) if t is not None else None
                    if alert is None:
                        self.m.skipped.labels("unusable_alert").inc()
                        continue
                    out.append(AlertIn(alert_owner(doc, alert), alert))
                    self.counted["alert"].inc()
                else:
                    ev = decode_stitched(r.value or b"")
                    out.append(EventIn(ev.customer_id, ev_from_record(ev, self.bounds)))
                    self.counted["event"].inc()
            except RecordError as exc:
                self.m.skipped.labels(exc.reason).inc()
            except msgspec.ValidationError:  # JSON, but not a gap_alert.v1 the map can read
                self.m.skipped.labels("unusable_alert").inc()
            except (msgspec.DecodeError, orjson.JSONDecodeError, TypeError, ValueError):
                self.m.skipped.labels("malformed_json").inc()
        return out

    async def handle(self, records: list[Record], out: Outbox) -> None:
        inputs = self.decode(records)
        if not inputs:
            return
        started = time.perf_counter()
        loaded = await self.store.load(names(inputs))
        for _ in range(MAX_ROUNDS):
            need = missing_targets({c: s for c, (s, _) in loaded.items()})
            if not need:
                break
            loaded.update(await self.store.load(need))
        plan = apply(inputs, {c: s for c, (s, _) in loaded.items()}, self.bounds)
        shards: dict[int, tuple[dict[str, tuple[bytes, str]], list[Delta]]] = defaultdict(lambda: ({}, []))
        for cid, state in plan.states.items():
            states, deltas = shards[self.store.keys.shard_of(cid)]
            states[cid] = (state, loaded.get(cid, (None, ""))[1])
            deltas.append(plan.deltas[cid])
        # Every group's write runs to its end (each is atomic and idempotent); the first failure then fails
        # the batch, which the loop retries: the groups already written find nothing left to change.
        writes = [self.store.write(shard, states, deltas) for shard, (states, deltas) in shards.items()]
        results = await asyncio.gather(*writes, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            if any(isinstance(r, Conflict) for r in failed):
                self.m.conflicts.inc()
            raise failed[0]
        self.m.batch.observe(time.perf_counter() - started)


def build(
    settings: JourneyMapSettings, defs: Definitions, metrics: MapMetrics, client: AsyncClient
) -> tuple[KafkaLoop, MapHandler]:
    store = MapStore(
        client,
        MapKeys(settings.key_prefix, settings.map_shards),
        minute_ttl_ms=_ms(settings.map_minute_retention),
        hour_ttl_ms=_ms(settings.map_hour_retention),
        state_ttl_ms=settings.retention_ms,
        pain_members=settings.map_pain_members,
    )
    handler = MapHandler(settings, bounds_of(settings, defs), store, metrics)
    loop = KafkaLoop(
        settings,
        group_id=settings.map_group_id,
        topics=[settings.topic_stitched_events, settings.topic_identity_merges, settings.topic_gap_alerts],
        handler=handler,
        metrics=metrics.loop,
        batch_size=settings.map_batch_size,
    )
    return loop, handler


def _ms(text: str) -> int:
    from services.common.timeutil import parse_duration_ms

    return parse_duration_ms(text)


async def main(
    settings: JourneyMapSettings, defs: Definitions, metrics: MapMetrics, stop: asyncio.Event
) -> None:
    """Run the worker until ``stop`` is set (SIGTERM: the batch in flight finishes and is committed)."""
    client = connect(settings.redis_url, socket_timeout=10)
    loop, _ = build(settings, defs, metrics, client)
    tune_gc()
    log.info("journey map ready (group %s)", settings.map_group_id)
    try:
        await loop.run(stop)
    finally:
        await client.aclose()
