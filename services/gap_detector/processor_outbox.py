"""The processor's side of the transactional outbox: a batch's alerts are saved with the states that raised
them, then published, then removed from the outbox once the broker acknowledged them; and the tick's sweep
publishes what a failed or dead worker left there. Kept apart from processor.py (which feeds batches through
the core) because it is the one place alerts leave the detector; ``AlertPublishing`` is a base of
DetectorProcessor, whose __init__ sets the attributes it declares."""

from __future__ import annotations

import time
from typing import Any

import orjson
from prometheus_client import Histogram

from services.gap_detector.batch_inputs import Sink
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.store import DetectorStore
from services.gap_detector.store_types import OUTBOX_GRACE_MS, OutboxEntry, Save, StateConflict

TIMER_LEASE_MS = 30_000  # the lease of claimed stall timers (processor.py) and of swept outbox entries
OUTBOX_PER_TICK = 500


class AlertPublishing:
    store: DetectorStore
    m: DetectorMetrics
    _t_write: Histogram
    _t_produce: Histogram

    async def _publish_and_save(self, save: Save, now: int, sink: Sink) -> int:
        """Save, then publish (the transactional outbox): each alert is written with the state that raised
        it, into its customer's outbox, in one compare-and-set script call per hash slot; only then is it
        published, and removed from the outbox once acknowledged. So an alert goes out only if the state
        that raised it was saved (a customer that lost a race with another worker publishes nothing, and
        the retry judges the state that won), and none is lost: what a failed or dead worker left in an
        outbox, a sweep publishes (``on_tick``; journeys_alerts_resent_total)."""
        # One record per alert id and batch: a later event of the same batch that raised an alert's
        # severity (or retracted it) makes the earlier version moot, so only the last one goes out.
        last = {a["alert_id"]: (cid, a) for cid, group in save.new_alerts.items() for a in group}
        last.update((a["alert_id"], ("", a)) for a in save.aggregate_alerts)
        save.outbox = [OutboxEntry(cid, aid, save.doc(a), a) for aid, (cid, a) in last.items()]
        t = time.perf_counter()
        try:
            await self.store.save(save, now)
        except StateConflict as exc:  # on a cluster the other customers were saved: their alerts go out
            await self._publish([e for e in save.outbox if e.cid not in exc.failed], now, sink)
            raise
        self._t_write.observe(time.perf_counter() - t)
        return await self._publish(save.outbox, now, sink)

    async def _publish(self, entries: list[OutboxEntry], now: int, sink: Sink) -> int:
        if not entries:
            return 0
        t = time.perf_counter()
        alerts = [orjson.loads(e.doc) if e.alert is None else e.alert for e in entries]
        await sink.publish(alerts, [e.doc for e in entries])
        await self.store.published(entries, now + OUTBOX_GRACE_MS)
        self._t_produce.observe(time.perf_counter() - t)
        self._count(alerts)
        return len(alerts)

    async def _sweep_outbox(self, now: int, sink: Sink) -> int:
        """Publish what failed or dead workers saved and did not publish (some may have gone out already:
        their worker died between the broker's acknowledgement and the removal). Each goes out as its
        outbox holds it now: a retraction or update saved since is the last record of its id."""
        swept = 0
        while True:
            claimed = await self.store.claim_outbox(now, TIMER_LEASE_MS, OUTBOX_PER_TICK)
            if not claimed:
                return swept
            lease = now + TIMER_LEASE_MS
            entries = [e for _, e in claimed if e is not None]
            await self.store.forget_outbox([m for m, e in claimed if e is None], lease)
            if entries:
                alerts = [orjson.loads(e.doc) for e in entries]
                await sink.publish(alerts, [e.doc for e in entries])
                await self.store.published(entries, lease, now)
                self.m.resent.inc(len(entries))
                self._count(alerts)
                swept += len(entries)
            if len(claimed) < OUTBOX_PER_TICK:
                return swept

    def _count(self, alerts: list[dict[str, Any]]) -> None:
        self.m.count_alerts(alerts)  # retractions are not counted as raised
