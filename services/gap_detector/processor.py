"""Feeds batches into the pure core and persists what it returns: the bridge between the Kafka loop's
handler and Redis. Order per batch: load (aliases, then states) -> core -> save (each customer's state
with its alerts in its outbox, compare-and-set; store.py) -> publish and await the acknowledgement ->
remove them from the outbox. A crash before the save replays the batch (idempotent: same alert ids); one
after it leaves the alerts in the outbox, which a sweep publishes (at-least-once out, never lost). The
publishing and the sweep are in processor_outbox.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence

from services.common.kafka_loop import Record
from services.common.record_codec import decode_merge, decode_stitched
from services.common.records import RecordError
from services.common.timeutil import now_ms
from services.gap_detector.batch_inputs import Evidence, Sink, chained
from services.gap_detector.clock_store import ClockStore
from services.gap_detector.core.clock import input_candidate, seen_evidence
from services.gap_detector.core.logic import DetectorLogic, Step, SupersededStall
from services.gap_detector.core.model import Entry, entry_from_record
from services.gap_detector.core.split import take_split
from services.gap_detector.core.state import fold
from services.gap_detector.dropoff_judge import DropoffJudge
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.processor_outbox import TIMER_LEASE_MS, AlertPublishing
from services.gap_detector.settings import GapDetectorSettings
from services.gap_detector.store import DetectorStore
from services.gap_detector.store_types import Loaded, Save, StateConflict

log = logging.getLogger(__name__)

CELLS_PER_CLAIM = 2000
FIRE_ATTEMPTS = 3  # compare-and-set refusals of a fire retried at once (then the tick, leases released)


class DetectorProcessor(AlertPublishing):
    def __init__(
        self,
        settings: GapDetectorSettings,
        logic: DetectorLogic,
        store: DetectorStore,
        metrics: DetectorMetrics,
        clock: ClockStore,
    ) -> None:
        self.s, self.logic, self.store, self.m, self.clock = settings, logic, store, metrics, clock
        self.wm: int | None = None
        self._unjudged: list[tuple[str, int]] = []  # drop-off cells claimed, not judged yet (see on_tick)
        # Metric children resolved once: a labels() lookup per event or batch costs more than the update.
        self._t_decode, self._t_rules = metrics.stage.labels("decode"), metrics.stage.labels("rules")
        self._t_produce = metrics.stage.labels("produce")
        self._t_write = metrics.stage.labels("journey_write")
        self._t_timers, self._n_rules = metrics.stage.labels("timers"), metrics.batch.labels("rules")
        self._e2e_alert = metrics.e2e.labels("alert")
        self.dropoff = DropoffJudge(logic.defs, store, metrics)

    async def advance_clock(self, evidence: Evidence) -> int | None:
        """Move the watermark as far as the evidence proves (core/clock.py); returns it."""
        reading = await self.clock.read(evidence.own_seen)
        noted = now_ms()  # after the read: every report read was written before this time
        candidate = None
        if reading.input_partitions is not None:
            candidate = input_candidate(
                reading.inputs,
                reading.input_partitions,
                self.s.timer_clock,
                self.s.watermark_idle_ms,
                self.s.lateness_ms,
            )
        seen = {**reading.seen, **evidence.own_seen}
        proven = seen_evidence(seen, evidence.expected) if evidence.expected else None
        return await self.clock.advance(noted, candidate, proven)

    # -- stitched events ---------------------------------------------------------------------------
    async def on_events(self, records: Sequence[Record], sink: Sink) -> int:
        """Process one batch of stitched events; returns the number of alerts raised."""
        t0 = time.perf_counter()
        good: list[tuple[str, Entry]] = []
        stamps: list[int] = []
        for rec in records:
            try:
                ev = decode_stitched(rec.value or b"")
            except RecordError as exc:
                self._dead(sink, rec, exc.reason, exc.detail)
                continue
            entry = entry_from_record(ev)
            good.append((ev.customer_id, entry))
            stamps.append(rec.timestamp_ms)
        self._t_decode.observe(time.perf_counter() - t0)
        self._n_rules.observe(len(records))
        if not good:
            return 0
        asked = list(dict.fromkeys(cid for cid, _ in good))
        t1 = time.perf_counter()
        now = now_ms()
        # The batch runs under the watermark from before it: the watermark only moves on evidence that
        # what it covers is committed (core/clock.py), so it never runs ahead of this batch.
        wm, loaded = await self.store.load([(c, "") for c in asked])
        save = Save()
        events: dict[str, list[Entry]] = {}
        for cid, entry in good:
            events.setdefault(loaded[cid].cid, []).append(entry)
        on_item, absorb, expire = self.logic.on_item, self._absorb, self.logic.expire
        ttl = self.s.open_alert_ttl_ms
        # One customer at a time, start to finish (customers are independent): its state is still in the
        # CPU cache when the store encodes it, which costs a fraction of encoding it at the end of the batch.
        for target in self._fold_all(loaded.values(), save, now):
            cid, state = target.cid, target.state
            for entry in events.get(cid, ()):
                save.write_state.add(cid)
                absorb(save, cid, on_item(cid, state, entry, now, wm))
            closed = expire(state, now, ttl)
            if closed:
                save.closed.setdefault(cid, []).extend(closed)
            self.store.stage(save, target)
        self._t_rules.observe(time.perf_counter() - t1)
        alerts = await self._publish_and_save(save, now, sink)
        self.wm = wm
        done_ms = time.time() * 1000
        observe = self._e2e_alert.observe
        for ts in stamps:
            if ts:
                observe(max(0.0, done_ms - ts) / 1000)
        return alerts

    def _dead(self, sink: Sink, rec: Record, reason: str, detail: str) -> None:
        self.m.dead_lettered.labels(reason).inc()
        sink.dead_letter(rec, reason, detail)

    def _fold_all(self, targets: Iterable[Loaded], save: Save, now: int) -> Iterator[Loaded]:
        """Each distinct survivor once, after folding its unfolded losers in; also listed in ``save``."""
        seen: set[str] = set()
        for target in targets:
            if target.cid in seen:
                continue
            seen.add(target.cid)
            save.customers.append(target)
            for loser in target.losers:
                self._absorb(save, target.cid, self.logic.on_fold(target.cid, target.state, loser.state, now))
            yield target

    @staticmethod
    def _absorb(save: Save, cid: str, step: Step) -> None:
        if step.alerts:
            save.new_alerts.setdefault(cid, []).extend(step.alerts)
        if step.closed:
            save.closed.setdefault(cid, []).extend(step.closed)
        if step.cells:
            save.add_cells(cid, step.cells)
        for suffix, op in step.extra_timers.items():
            save.extra_timers[f"{cid}|{suffix}"] = op

    # -- identity merges ---------------------------------------------------------------------------
    async def on_merges(self, records: Sequence[Record], sink: Sink) -> int:
        """Fold each merge record's loser into its survivor (idempotent: a folded loser has no state), then
        follow each admin's split (``_split``)."""
        pairs: list[tuple[str, str]] = []
        splits: list[tuple[str, str]] = []
        for rec in records:
            try:
                merge = decode_merge(rec.value or b"")
            except RecordError as exc:
                self._dead(sink, rec, exc.reason, exc.detail)
                continue
            if merge.kind == "merge":
                pairs.append((merge.survivor, merge.loser))
            elif isinstance(merge.split, dict) and merge.split.get("action") == "split":
                splits.append((merge.survivor, merge.loser))
        raised = 0
        if pairs:
            _, loaded = await self.store.load(chained(pairs))
            save, now = Save(), now_ms()
            for _ in self._fold_all(loaded.values(), save, now):
                pass
            raised = await self._publish_and_save(save, now, sink)
        for kept, new in splits:  # an admin's action: rare, one save each
            raised += await self._split(kept, new, sink)
        return raised

    async def _split(self, kept: str, new: str, sink: Sink) -> int:
        """Move what belongs to the new customer's events from the kept customer's detector state to its
        own (core/split.py): buffered entries, marks with their timers, open alerts. Skipped when either
        is merged into someone since (the split's undo, an allowed merge): they are one customer again.
        Idempotent: taken once, nothing of the new customer's is left in the kept state."""
        _, loaded = await self.store.load([(kept, ""), (new, "")])
        k, n = loaded[kept], loaded[new]
        if k.cid != kept or n.cid != new or kept == new:
            return 0
        events, docs = await self.store.split_inputs(kept, new)
        save, now = Save(), now_ms()
        for _ in self._fold_all([k, n], save, now):
            pass
        part, moved = take_split(k.state, events, docs)
        if not part.buffer and not part.marks and not moved:
            return await self._publish_and_save(save, now, sink) if k.losers or n.losers else 0
        fold(n.state, part)
        save.write_state.update((kept, new))  # timers of moved marks leave the kept customer's index
        save.split_from.add(kept)
        if moved:
            save.closed.setdefault(kept, []).extend(moved)
            save.adopted[new] = moved
        log.info(
            "split followed: %d events, %d marks, %d open alerts moved to the new customer",
            len(part.buffer),
            len(part.marks),
            len(moved),
        )
        return await self._publish_and_save(save, now, sink)

    # -- timers and drop-off minutes ---------------------------------------------------------------
    async def on_tick(self, sink: Sink, evidence: Evidence) -> int:
        """Move the watermark on evidence, publish what failed workers left in the outbox, fire due stall
        timers and judge closed drop-off minutes; returns alerts published."""
        wm = await self.advance_clock(evidence)
        now = now_ms()
        self.wm = wm
        raised = await self._sweep_outbox(now, sink)
        if wm is None:
            return raised
        self.m.watermark_lag.set(max(0.0, (now - wm) / 1000))
        while True:
            claimed = await self.store.claim_timers(wm, now, TIMER_LEASE_MS, self.s.timers_per_tick)
            if not claimed:
                break
            raised += await self._fire_leased(claimed, wm, now, sink)
            if len(claimed) < self.s.timers_per_tick:
                break
        history: dict[int, dict[bytes, bytes]] = {}  # drop-off minutes read once per tick
        while True:  # cells queue up until the watermark passes their minute; a late write re-queues one
            cells = await self.store.claim_cells((wm // 60_000) * 60_000 - 60_000, CELLS_PER_CLAIM)
            # Claimed cells leave the queue: until judged they are kept here, so a failed tick (broker
            # or Redis gone) judges them on its retry instead of dropping them.
            self._unjudged += cells
            if self._unjudged:
                raised += await self._judge_cells(self._unjudged, now, sink, history)
                self._unjudged = []
            if len(cells) < CELLS_PER_CLAIM:
                return raised

    async def _fire_leased(self, claimed: list[tuple[str, str, int]], wm: int, now: int, sink: Sink) -> int:
        """Fire claimed timers, again at once when another worker wrote one of their customers meanwhile:
        they are leased to this worker, and left to their lease they would wait 30 s for any of them (on a
        single Redis one conflict refuses the whole save). A timer fired already is a no-op the next time."""
        for attempt in range(FIRE_ATTEMPTS):
            try:
                return await self._fire(claimed, wm, now, sink)
            except StateConflict as exc:
                if attempt == FIRE_ATTEMPTS - 1 or not exc.retry:
                    # Busy customers (several workers writing them): the retried tick claims these again
                    # at once; left to their lease they waited 30 s (3 of 121 stalls past an evaluation's
                    # reading, 3 + 3 workers on a loaded machine).
                    await self.store.release_timers(exc.retry or claimed)
                    raise
                claimed = exc.retry  # on a cluster the other customers' timers fired: only these again
        return 0

    async def _fire(self, claimed: list[tuple[str, str, int]], wm: int, now: int, sink: Sink) -> int:
        """Fire claimed timers that the customers' states still hold (the timer wheel is only an index)."""
        t = time.perf_counter()
        _, loaded = await self.store.load([(cid, "") for cid in dict.fromkeys(c for c, _, _ in claimed)])
        save = Save()
        for _ in self._fold_all(loaded.values(), save, now):
            pass
        for cid, journey, deadline in claimed:
            target: Loaded = loaded[cid]
            # Everything a timer does is saved with its survivor's state (compare-and-set): a refused fire
            # leaves it in flight and counts nothing, a fire that was saved is not repeated.
            save.finished_timers.setdefault(target.cid, []).append(f"{cid}|{journey}")
            sup = SupersededStall.parse(journey)
            if sup is not None:
                # Self-contained, fired under the customer it was armed for; but not when the state still
                # has X as its latest event: then nothing superseded X (an index entry whose save was
                # refused), and X's own timer decides.
                current = target.state.marks.get(sup.journey)
                if current is not None and current.id == sup.mark.id:
                    continue
                step = self.logic.on_notify_superseded(cid, journey, now, target.state)
            else:
                step = self.logic.on_notify(target.cid, target.state, journey, wm, now)
            if step.alerts:
                self.m.fire_delay.observe(max(0.0, (wm - deadline) / 1000))
            self._absorb(save, target.cid, step)
        try:
            raised = await self._publish_and_save(save, now, sink)
        except StateConflict as exc:
            exc.retry = [(c, j, d) for c, j, d in claimed if loaded[c].cid in exc.failed]
            raise
        self._t_timers.observe(time.perf_counter() - t)
        return raised

    async def _judge_cells(
        self, cells: list[tuple[str, int]], now: int, sink: Sink, hashes: dict[int, dict[bytes, bytes]]
    ) -> int:
        """Judge cell-minutes against their baselines; a spike is raised once per cell-minute."""
        raised = await self.dropoff.spikes(cells, now, hashes)
        if not raised:
            return 0
        save = Save(aggregate_alerts=[a for _, a in raised], dropoff_alerted=[c for c, _ in raised])
        return await self._publish_and_save(save, now, sink)
