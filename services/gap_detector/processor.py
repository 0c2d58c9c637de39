"""Feeds batches into the pure core and persists what it returns: the bridge between the faust agents
and Redis. Order per batch: load (one script call) -> core -> publish alerts -> save (one pipeline), so
a crash before the save replays the batch and re-publishes the same alert ids (at-least-once out).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from services.common import contracts
from services.common.timeutil import now_ms
from services.gap_detector.core.dropoff import judge
from services.gap_detector.core.logic import DetectorLogic, Step, is_superseded, watermark
from services.gap_detector.core.model import Entry, Invalid, entry_from_event
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.settings import GapDetectorSettings
from services.gap_detector.store import DetectorStore, Loaded, Save

log = logging.getLogger(__name__)

Publish = Callable[[list[dict[str, Any]]], Awaitable[None]]
DeadLetter = Callable[["Record", str, str], Awaitable[None]]
TIMER_LEASE_MS = 30_000
CELLS_PER_CLAIM = 2000


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed Kafka record: what the processor needs of it."""

    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None
    topic: str = ""
    partition: int = -1
    offset: int = -1


def decode_stitched(record: Record) -> tuple[str, Entry] | Invalid:
    try:
        doc = orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        return Invalid("malformed_json", str(exc)[:200])
    problem = contracts.first_error(contracts.STITCHED_EVENT, doc)
    if problem is not None:
        return Invalid("schema_violation", problem[:200])
    entry = entry_from_event(doc)
    return entry if isinstance(entry, Invalid) else (doc["customer_id"], entry)


class DetectorProcessor:
    def __init__(self, settings: GapDetectorSettings, logic: DetectorLogic, store: DetectorStore,
                 metrics: DetectorMetrics, publish: Publish, dead_letter: DeadLetter) -> None:
        self.s, self.logic, self.store, self.m = settings, logic, store, metrics
        self.publish, self.dead_letter = publish, dead_letter
        self.wm: int | None = None

    def clock(self, parts: dict[str, int], now: int, *, write: bool,
              busy: Sequence[str] = ()) -> dict[str, Any]:
        return {"parts": parts, "busy": list(busy), "now": now, "idle": self.s.watermark_idle_ms,
                "lateness": self.s.lateness_ms, "write": write}

    async def touch(self, busy: Sequence[str]) -> None:
        """Partitions the consumer has not caught up on are not idle (see watermark.lua)."""
        await self.store.load([], self.clock({}, now_ms(), write=True, busy=busy))

    def effective_wm(self, stored: int | None, now: int) -> int | None:
        # The stored value is already max event time minus lateness; live mode adds the wall clock.
        return watermark(None if stored is None else stored + self.s.lateness_ms, self.s.lateness_ms,
                         self.s.timer_clock, now)

    # -- stitched events ---------------------------------------------------------------------------
    async def on_events(self, records: Sequence[Record], busy: Sequence[str] = ()) -> int:
        """Process one batch of stitched events; returns the number of alerts raised. ``busy``: partitions
        (as strings) still behind their head, which must keep holding the watermark back."""
        t0 = time.perf_counter()
        good: list[tuple[str, Entry, Record]] = []
        for rec in records:
            decoded = decode_stitched(rec)
            if isinstance(decoded, Invalid):
                self.m.dead_lettered.labels(decoded.reason).inc()
                await self.dead_letter(rec, decoded.reason, decoded.detail)
                continue
            good.append((*decoded, rec))
        self.m.stage.labels("decode").observe(time.perf_counter() - t0)
        self.m.batch.labels("rules").observe(len(records))
        if not good:
            return 0
        parts: dict[str, int] = {}
        for _, e, rec in good:
            key = str(rec.partition)
            parts[key] = max(parts.get(key, e.t), e.t)
        asked = list(dict.fromkeys(cid for cid, _, _ in good))
        t1 = time.perf_counter()
        now = now_ms()
        # The batch runs under the watermark from before it (its own events may be late relative to each
        # other); apply.lua moves the watermark once the batch's writes are in.
        stored_wm, loaded = await self.store.load([(c, "") for c in asked], None)
        wm = self.effective_wm(stored_wm, now)
        save = Save(clock=self.clock(parts, now, write=True, busy=busy))
        self._fold_all(loaded.values(), save, now)
        for cid, entry, _ in good:
            target = loaded[cid]
            save.write_state.add(target.cid)
            self._absorb(save, target.cid, self.logic.on_item(target.cid, target.state, entry, now, wm))
        for target in {id(v): v for v in loaded.values()}.values():
            self._absorb(save, target.cid, Step(closed=self.logic.expire(target.state, now,
                                                                        self.s.open_alert_ttl_ms)))
        self.m.stage.labels("rules").observe(time.perf_counter() - t1)
        alerts = await self._publish_and_save(save, now)
        self.wm = wm
        done = time.time()
        for _, _, rec in good:
            if rec.timestamp_ms:
                self.m.e2e.labels("alert").observe(max(0.0, done - rec.timestamp_ms / 1000))
        return alerts

    def _fold_all(self, targets: Any, save: Save, now: int) -> None:
        seen: set[str] = set()
        for target in targets:
            if target.cid in seen:
                continue
            seen.add(target.cid)
            save.customers.append(target)
            for _, lstate, _ in target.losers:
                self._absorb(save, target.cid, self.logic.on_fold(target.cid, target.state, lstate, now))

    @staticmethod
    def _absorb(save: Save, cid: str, step: Step) -> None:
        if step.alerts:
            save.new_alerts.setdefault(cid, []).extend(step.alerts)
        if step.closed:
            save.closed.setdefault(cid, []).extend(step.closed)
        save.add_cells(step.cells)
        for suffix, deadline in step.extra_timers.items():
            save.extra_timers[f"{cid}|{suffix}"] = deadline

    async def _publish_and_save(self, save: Save, now: int) -> int:
        alerts = [a for group in save.new_alerts.values() for a in group] + save.aggregate_alerts
        if alerts:
            t = time.perf_counter()
            await self.publish(alerts)
            self.m.stage.labels("produce").observe(time.perf_counter() - t)
            for a in alerts:
                if a["status"] == "open":  # not retractions
                    self.m.alerts.labels(a["type"], a["severity"]).inc()
        t = time.perf_counter()
        await self.store.save(save, now)
        self.m.stage.labels("journey_write").observe(time.perf_counter() - t)
        return len(alerts)

    # -- identity merges ---------------------------------------------------------------------------
    async def on_merges(self, records: Sequence[Record]) -> int:
        """Fold each merge record's loser into its survivor (idempotent: a folded loser has no state)."""
        pairs: list[tuple[str, str]] = []
        for rec in records:
            try:
                doc = orjson.loads(rec.value)
            except orjson.JSONDecodeError as exc:
                self.m.dead_lettered.labels("malformed_json").inc()
                await self.dead_letter(rec, "malformed_json", str(exc)[:200])
                continue
            problem = contracts.first_error(contracts.IDENTITY_MERGE, doc)
            if problem is not None:
                self.m.dead_lettered.labels("schema_violation").inc()
                await self.dead_letter(rec, "schema_violation", problem[:200])
                continue
            if doc["kind"] == "merge":
                pairs.append((doc["survivor"], doc["loser"]))
        if not pairs:
            return 0
        _, loaded = await self.store.load(pairs, None)
        save, now = Save(), now_ms()
        self._fold_all(loaded.values(), save, now)
        return await self._publish_and_save(save, now)

    # -- timers and drop-off minutes ---------------------------------------------------------------
    async def on_tick(self) -> int:
        """Fire due stall timers and judge closed drop-off minutes; returns alerts raised."""
        now = now_ms()
        stored, _ = await self.store.load([], self.clock({}, now, write=True))  # idle partitions let go
        wm = self.effective_wm(stored, now)
        self.wm = wm
        if wm is None:
            return 0
        self.m.watermark_lag.set(max(0.0, (now - wm) / 1000))
        raised = 0
        while True:
            claimed = await self.store.claim_timers(wm, now, TIMER_LEASE_MS, self.s.timers_per_tick)
            if not claimed:
                break
            raised += await self._fire(claimed, wm, now)
            if len(claimed) < self.s.timers_per_tick:
                break
        while True:  # cells queue up until the watermark passes their minute; a late write re-queues one
            cells = await self.store.claim_cells((wm // 60_000) * 60_000 - 60_000, CELLS_PER_CLAIM)
            if cells:
                raised += await self._judge_cells(cells, now)
            if len(cells) < CELLS_PER_CLAIM:
                return raised

    async def _fire(self, claimed: list[tuple[str, str, int]], wm: int, now: int) -> int:
        t = time.perf_counter()
        asked = dict.fromkeys(c for c, j, _ in claimed if not is_superseded(j))
        _, loaded = await self.store.load([(cid, "") for cid in asked], None) if asked else (None, {})
        save = Save(finished_timers=[f"{c}|{j}" for c, j, _ in claimed])
        self._fold_all(loaded.values(), save, now)
        for cid, journey, deadline in claimed:
            if is_superseded(journey):
                step = self.logic.on_notify_superseded(cid, journey, now)
            else:
                target: Loaded = loaded[cid]
                step = self.logic.on_notify(target.cid, target.state, journey, wm, now)
                cid = target.cid
            if step.alerts:
                self.m.fire_delay.observe(max(0.0, (wm - deadline) / 1000))
            self._absorb(save, cid, step)
        raised = await self._publish_and_save(save, now)
        self.m.stage.labels("timers").observe(time.perf_counter() - t)
        return raised

    async def _judge_cells(self, cells: list[tuple[str, int]], now: int) -> int:
        """Judge cell-minutes against their baselines; a spike is raised once per cell-minute."""
        span = max(self.logic.defs.thresholds(c.split("|", 1)[0]).dropoff_baseline_minutes for c, _ in cells)
        minutes = sorted({m - i * 60_000 for _, m in cells for i in range(span + 1)})
        hashes = await self.store.cell_history(minutes)
        spikes = []
        for cell, minute in cells:
            h = hashes[minute]
            base_n = self.logic.defs.thresholds(cell.split("|", 1)[0]).dropoff_baseline_minutes
            history = [_counts(hashes[minute - i * 60_000], cell) for i in range(1, base_n + 1)]
            volume, drops = _counts(h, cell)
            j = judge(cell, minute, volume, drops, history, self.logic.defs, now)
            self.m.dropoff_rate.labels(j.journey, j.stage, j.channel).set(j.rate)
            self.m.dropoff_baseline.labels(j.journey, j.stage, j.channel).set(j.baseline)
            if j.alert is not None:
                spikes.append(((cell, minute), j.alert))
        if not spikes:
            return 0
        fresh = await self.store.mark_dropoff_alerted([c for c, _ in spikes])
        save = Save(aggregate_alerts=[a for (_, a), new in zip(spikes, fresh, strict=True) if new])
        if not save.aggregate_alerts:
            return 0
        return await self._publish_and_save(save, now)


def _counts(h: dict[bytes, bytes], cell: str) -> tuple[int, int]:
    return int(h.get(cell.encode(), 0)), int(h.get(cell.encode() + b"|d", 0))
