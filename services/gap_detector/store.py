"""The detector's Redis adapter, correct on a single Redis and on Redis Cluster alike. No rule logic here.

Every script touches the keys of one hash slot only (docs/gap-detector.md, "Redis and Redis Cluster"):
- **load**: ``resolve.lua`` reads the identity graph's slot (aliases, merged-away customers); ``load.lua``
  reads the customers' states, grouped by slot;
- **save**: a customer's *truth* — its state hash (with its pending timers, field 't'), open alerts and
  alert outbox — is written by ``apply.lua`` in its own slot, with compare-and-set on the token it was
  loaded with. The detector-wide *indexes* are hints around it: the timer wheel's new deadlines and the
  outbox index are written before the truth (a hint without truth is dropped when it fires or is swept:
  nothing invented), removals, drop-off counts and recent alerts after it (a crash in between leaves the
  outbox to redo them: nothing lost). A merged-away customer is deleted after its survivor's truth, and
  only if unchanged since it was folded (else it is folded again, idempotently, on the next load).
On a single Redis all of a save is one group: one atomic call; on a cluster one call per slot and phase.
Scripts avoid JSON inside JSON: replies are nested arrays, arguments MessagePack.

``DetectorStore`` is assembled from parts, each in its own module: the load (``store_load.py``), the save
(here), the outbox after the save (``store_outbox.py``), the claims of timers and drop-off cells
(``store_claims.py``) and how script calls are sent by slot (``store_slots.py``).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster

from services.common.keys import Keys
from services.gap_detector.core.logic import ArmTimer, CancelTimer
from services.gap_detector.core.state import STATE_VERSION, encode_buffer, encode_state
from services.gap_detector.script_calls import ApplyCall, ClaimOutboxCall, LoadCall, ResolveCall
from services.gap_detector.store_claims import ClaimQueries
from services.gap_detector.store_load import LoadQueries
from services.gap_detector.store_outbox import OutboxQueries
from services.gap_detector.store_slots import Item
from services.gap_detector.store_types import (
    DROPOFF_TTL_S,
    OUTBOX_GRACE_MS,
    Cached,
    Loaded,
    Save,
    StateCache,
    StateConflict,
)

PLACEHOLDER = "@CID@"


class DetectorStore(LoadQueries, OutboxQueries, ClaimQueries):
    def __init__(
        self,
        client: aioredis.Redis | aiocluster.RedisCluster,
        keys: Keys,
        retention_ms: int,
        recent_max: int,
        cache_size: int = 0,
    ) -> None:
        super().__init__(client, keys)
        self.cluster = isinstance(client, aiocluster.RedisCluster)
        self.cache = StateCache(cache_size)
        self.retention_s = max(1, retention_ms // 1000)
        self.recent_max = recent_max
        self._resolve = client.register_script(ResolveCall.source())
        self._load = client.register_script(LoadCall.source())
        self._apply = client.register_script(ApplyCall.source())
        self._claim_outbox = client.register_script(ClaimOutboxCall.source())
        self._alias_tpl, self._aliases_of_tpl = keys.alias(PLACEHOLDER), keys.aliases_of(PLACEHOLDER)
        self._state_tpl, self._open_tpl = keys.detector_state(PLACEHOLDER), keys.open_alerts(PLACEHOLDER)

    # -- save ----------------------------------------------------------------------------------------
    def stage(self, batch: Save, loaded: Loaded) -> None:
        """Queue a customer's writes once the batch is done with it (encoding a state just worked on is
        cheaper than coming back to it)."""
        k, cid, state, token = self.keys, loaded.cid, loaded.state, batch.token
        det, opened, stored = k.detector_state(cid), k.open_alerts(cid), loaded.stored_fields
        # Compare-and-set: nothing of this customer is written unless its state hash still holds the token
        # it was loaded with (another worker firing its stall or folding into it meanwhile: start over).
        truth: list[list[Any]] = [["EXPECT", det, stored.get(b"n", b"").decode()]]
        after: list[list[Any]] = []
        releases: list[list[Any]] = []
        for loser in loaded.losers:
            moved = [
                x.decode()
                for aid, doc in loser.open_docs.items()
                if aid.decode() in state.open_alerts
                for x in (aid, doc)
            ]
            if moved:
                truth.append(["HSET", opened, *moved])
            lk = k.detector_state(loser.cid)
            releases.append(["DELIF", lk, loser.token, lk, k.open_alerts(loser.cid)])
            if loser.state.timers:  # its timers moved with the fold (a stale one would only re-check)
                after.append(["ZREM", k.timers, *(f"{loser.cid}|{j}" for j in loser.state.timers)])
        # Only the fields that changed are written (a redelivered event changes none).
        buffer = encode_buffer(state.buffer, loaded.buffer)
        fields = encode_state(state, buffer.data)
        changed = [
            x.decode() for name, value in fields.items() if stored.get(name) != value for x in (name, value)
        ]
        if cid in batch.split_from:  # the marks a split took: the only fields a state ever loses
            dropped = [name.decode() for name in stored if name[:2] == b"j:" and name not in fields]
            if dropped:
                truth.append(["HDEL", det, *dropped])
                changed = changed or ["v", STATE_VERSION.decode()]
        if changed:
            truth.append(["HSET", det, *changed, "n", token.decode()])
            truth.append(["EXPIRE", det, self.retention_s])
        else:
            token = stored.get(b"n", b"")
        was = loaded.stored_timers
        before = [
            ["ZADD", k.timers, deadline, f"{cid}|{journey}"]
            for journey, deadline in state.timers.items()
            if was.get(journey) != deadline
        ]
        gone = [f"{cid}|{j}" for j in loaded.stored_timers if j not in state.timers]
        if gone and cid in batch.write_state:
            after.append(["ZREM", k.timers, *gone])
        alerts = [a for a in batch.new_alerts.get(cid, ()) if a["status"] == "open"]
        if alerts:
            truth.append(
                ["HSET", opened, *(x for a in alerts for x in (a["alert_id"], batch.doc(a).decode()))]
            )
        adopted = batch.adopted.get(cid)
        if adopted:  # a split's: moved as they were, not published again
            truth.append(["HSET", opened, *(x for aid, doc in adopted.items() for x in (aid, doc.decode()))])
        closed = batch.closed.get(cid)
        if closed:
            truth.append(["HDEL", opened, *closed])
        if alerts or loaded.losers or adopted:
            truth.append(["EXPIRE", opened, self.retention_s])
        batch.truth[cid], batch.index_before[cid], batch.index_after[cid] = truth, before, after
        if releases:
            batch.releases[cid] = releases
        fields[b"n"] = token
        batch.staged[cid] = Cached(token, state, fields, buffer) if token else None

    async def save(self, batch: Save, now_ms: int) -> None:
        """Write a batch: index hints, each customer's truth (compare-and-set), then the hints after it.
        Raises StateConflict naming the customers refused (nothing of theirs was written)."""
        k = self.keys
        for loaded in batch.customers:
            if loaded.cid not in batch.staged:
                self.stage(batch, loaded)
        truth: dict[str, list[list[Any]]] = {cid: list(ops) for cid, ops in batch.truth.items()}
        spikes: list[list[Any]] = [
            ["HSET", k.dropoff_minute(m), "!a|" + cell, 1] for cell, m in batch.dropoff_alerted
        ]
        boxes: dict[str, list[str]] = {}
        for e in batch.outbox:
            boxes.setdefault(e.cid, []).extend((e.alert_id, e.doc.decode()))
        for cid, flat in boxes.items():
            if cid:
                box = k.customer_outbox(cid)
                truth.setdefault(cid, []).extend([["HSET", box, *flat], ["EXPIRE", box, self.retention_s]])
            else:
                spikes.append(["HSET", k.dropoff_outbox, *flat])
        before_det = [op for ops in batch.index_before.values() for op in ops]
        before_det += [
            ["ZADD", k.timers, op.deadline, m]
            for m, op in batch.extra_timers.items()
            if isinstance(op, ArmTimer)
        ]
        score = now_ms + OUTBOX_GRACE_MS
        before: list[Item] = [(k.timers, before_det, None)]
        if batch.outbox:
            before.append(
                (
                    k.alerts_outbox,
                    [["ZADD", k.alerts_outbox, *(x for e in batch.outbox for x in (score, e.member))]],
                    None,
                )
            )
        truth_items: list[Item] = [(k.detector_state(cid), ops, cid) for cid, ops in truth.items()]
        truth_items.append((k.timers, spikes, ""))
        if self.cluster:
            await self._run(before)
            failed = await self._run(truth_items)
            await self._run(self._after(batch, failed, now_ms))
        else:  # one slot group: a single atomic call (a refused customer refuses the whole batch)
            failed = await self._run([*before, *truth_items, *self._after(batch, set(), now_ms)])
            if failed:
                failed = {*truth, ""}
        for cid, cached in batch.staged.items():  # written: what Redis now holds is what this worker has
            if cached is not None and cid not in failed:
                self.cache.put(cid, cached)
        if failed:
            raise StateConflict(f"apply.lua: state changed meanwhile ({len(failed)} customers)", failed)

    def _after(self, batch: Save, failed: set[str], now_ms: int) -> list[Item]:
        """The hints written once the truth is: index removals, drop-off counts, recent alerts, and the
        merged-away customers' deletion; none for a customer whose truth was refused."""
        k = self.keys
        det = [op for cid, ops in batch.index_after.items() if cid not in failed for op in ops]
        for member, op in batch.extra_timers.items():
            if isinstance(op, CancelTimer) and member.partition("|")[0] not in failed:
                det.append(["ZREM", k.timers, member])
        # A refused customer's timers stay in flight: fired again at once, or when their lease runs out.
        finished = [m for cid, ms in batch.finished_timers.items() if cid not in failed for m in ms]
        if finished:
            det.append(["ZREM", k.timers_inflight, *finished])
        totals: dict[tuple[str, int], list[int]] = {}  # one increment per cell-minute and batch
        for cid, cells in batch.cells.items():
            if cid in failed:
                continue
            for key, (volume, drops) in cells.items():
                acc = totals.setdefault(key, [0, 0])
                acc[0] += volume
                acc[1] += drops
        for (cell, minute), (volume, drops) in totals.items():
            mkey = k.dropoff_minute(minute)
            if volume:
                det.append(["HINCRBY", mkey, cell, volume])
            if drops:
                det.append(["HINCRBY", mkey, cell + "|d", drops])
            det.append(["EXPIRE", mkey, DROPOFF_TTL_S])
            det.append(["ZADD", k.dropoff_pending, minute, f"{cell}|{minute}"])
        items: list[Item] = [(k.timers, det, None)]
        saved = [e for e in batch.outbox if e.cid not in failed]
        items.append(self._recent(saved, now_ms))
        items += [
            (op[1], [op], None) for cid, ops in batch.releases.items() if cid not in failed for op in ops
        ]
        return items
