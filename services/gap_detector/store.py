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
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import orjson
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

from services.common.keys import Keys
from services.common.limits import MAX_ALIAS_HOPS, MAX_LOSERS_PER_LOAD
from services.common.redis_conn import group_by_slot
from services.gap_detector.core.logic import ArmTimer, CancelTimer
from services.gap_detector.core.state import STATE_VERSION, encode_buffer, encode_state
from services.gap_detector.script_calls import ApplyCall, ClaimOutboxCall, LoadCall, ResolveCall
from services.gap_detector.store_claims import ClaimQueries
from services.gap_detector.store_types import (
    DROPOFF_TTL_S,
    OUTBOX_GRACE_MS,
    Cached,
    Loaded,
    Loser,
    OutboxEntry,
    Save,
    StateCache,
    StateConflict,
    decoded,
    pack,
)

PLACEHOLDER = "@CID@"
# Script calls in flight at once: on a cluster a batch makes about one call per customer (hash slot), and
# redis-py's cluster client refuses a connection beyond 100 per node rather than wait for one.
CONCURRENT_CALLS = 32
Item = tuple[str, list[list[Any]], str | None]  # (a key of the slot, operations, customer they belong to)


async def bounded(calls: list[Coroutine[Any, Any, Any]], return_exceptions: bool = False) -> list[Any]:
    """``asyncio.gather`` with at most CONCURRENT_CALLS of ``calls`` awaited at once."""
    if len(calls) <= CONCURRENT_CALLS:
        return list(await asyncio.gather(*calls, return_exceptions=return_exceptions))
    gate = asyncio.Semaphore(CONCURRENT_CALLS)

    async def one(call: Coroutine[Any, Any, Any]) -> Any:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls), return_exceptions=return_exceptions))


class DetectorStore(ClaimQueries):
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

    async def _many(self, script: AsyncScript, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run ``script`` once per (keys, args), each on the node of its keys' slot; replies in order, an
        error reply as its exception. On a cluster the calls go as one pipeline (a round trip per node;
        one call per customer otherwise costs ~3x the worker CPU), named by their node up front."""
        if not self.cluster or len(calls) == 1:
            return await bounded([script(keys=k, args=a) for k, a in calls], return_exceptions=True)
        assert isinstance(self.r, aiocluster.RedisCluster)
        await self.r.initialize()  # a no-op once the slots are known
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(2):  # a second time after NOSCRIPT (a node restarted or failed over): load, re-send
            pipe = self.r.pipeline(transaction=False)
            for i in todo:
                keys, args = calls[i]
                # execute_command: redis-py's cluster pipeline blocks its evalsha method (it cannot load a
                # script on every node itself), and routes EVALSHA like any command.
                pipe.execute_command(
                    "EVALSHA",
                    script.sha,
                    len(keys),
                    *keys,
                    *args,
                    target_nodes=self.r.get_node_from_key(keys[0]),
                )
            for i, reply in zip(todo, await pipe.execute(raise_on_error=False), strict=True):
                results[i] = reply
            todo = [i for i in todo if isinstance(results[i], NoScriptError)]
            if not todo:
                break
            await self.r.script_load(script.script)
        return results

    # -- load ----------------------------------------------------------------------------------------
    async def load(self, cids: list[tuple[str, str]]) -> tuple[int | None, dict[str, Loaded]]:
        """Load (customer id, extra loser or '') pairs. Returns the watermark and, per asked id, the
        survivor's Loaded with its unfolded losers (asked ids may share a survivor)."""
        if not cids:
            wm = await self.r.get(self.keys.watermark)
            return (None if wm is None else int(wm)), {}
        asks = [[cid, extra] for cid, extra in cids]
        graph, wm = await asyncio.gather(
            self._resolve(*self._resolve_call(cids[0][0], asks)), self.r.get(self.keys.watermark)
        )
        plan: list[tuple[str, str, list[str]]] = []
        reads: dict[str, list[Any]] = {}  # customer -> [id, cached token or '', 1 to read open alerts]
        taken: dict[str, Cached] = {}
        for (asked, _), (raw_survivor, raw_losers) in zip(cids, graph, strict=True):
            survivor, losers = raw_survivor.decode(), [x.decode() for x in raw_losers]
            plan.append((asked, survivor, losers))
            if survivor not in reads:
                cached = self.cache.take(survivor)
                if cached is not None:
                    taken[survivor] = cached
                reads[survivor] = [survivor, cached.token.decode() if cached is not None else "", 0]
            for loser in losers:
                reads.setdefault(loser, [loser, "", 1])
        got = await self._read_states(list(reads.values()))
        by_survivor: dict[str, Loaded] = {}
        by_asked: dict[str, Loaded] = {}
        for asked, survivor, losers in plan:
            loaded = by_survivor.get(survivor)
            if loaded is None:
                loaded = by_survivor[survivor] = self._survivor(survivor, got[survivor], taken.get(survivor))
            folded = {x.cid for x in loaded.losers}
            for loser in losers:
                det, open_flat = got[loser]
                if loser in folded or loser == survivor or not (det or open_flat):
                    continue  # folded before (its state is gone) or in this batch already
                state, fields, open_docs = decoded(det or [], open_flat)
                loaded.losers.append(Loser(loser, state, open_docs, fields.get(b"n", b"").decode()))
                folded.add(loser)
            by_asked[asked] = loaded
        return (None if wm is None else int(wm)), by_asked

    def _resolve_call(self, first: str, asks: list[list[str]]) -> tuple[list[Any], list[Any]]:
        call = ResolveCall(
            self.keys.alias(first),
            self._alias_tpl,
            self._aliases_of_tpl,
            pack(asks),
            MAX_ALIAS_HOPS,
            MAX_LOSERS_PER_LOAD,
        )
        return call.keys(), call.argv()

    async def _read_states(self, reads: list[list[Any]]) -> dict[str, list[Any]]:
        groups = group_by_slot(reads, lambda r: self.keys.detector_state(r[0]), cluster=self.cluster)
        calls = [
            LoadCall(self.keys.detector_state(g[0][0]), self._state_tpl, self._open_tpl, pack(g))
            for g in groups
        ]
        replies = await self._many(self._load, [(c.keys(), c.argv()) for c in calls])
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return {
            r[0]: reply
            for g, got in zip(groups, replies, strict=True)
            for r, reply in zip(g, got, strict=True)
        }

    def _survivor(self, cid: str, reply: list[Any], hit: Cached | None) -> Loaded:
        det, open_flat = reply
        if det is None and hit is not None:  # the cached state is what Redis holds
            self.cache.hits += 1
            return Loaded(cid, hit.state, [], dict(hit.state.timers), hit.fields, hit.buffer)
        self.cache.misses += 1
        state, fields, _ = decoded(det or [], open_flat)
        return Loaded(cid, state, [], dict(state.timers), fields)

    async def split_inputs(self, kept: str, new: str) -> tuple[set[str], dict[str, bytes]]:
        """What following a split reads besides the two states: the new customer's event ids (its journey
        timeline, which the stitcher filled before publishing the split record; the new customer's slot)
        and the kept customer's open-alert documents (its slot). A kept state changed after this read is
        refused by the save's compare-and-set, so nothing stale is written."""
        events, docs = await asyncio.gather(
            self.r.zrange(self.keys.timeline(new), 0, -1), self.r.hgetall(self.keys.open_alerts(kept))
        )

        def text(v: Any) -> str:
            return v.decode() if isinstance(v, bytes) else str(v)

        return {text(e) for e in events}, {text(a): text(d).encode() for a, d in docs.items()}

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

    def _recent(self, entries: list[OutboxEntry], now_ms: int) -> Item:
        """The recent-alerts index (GET /api/v1/alerts) and its documents, kept bounded."""
        k = self.keys
        if not entries:
            return (k.recent_alerts, [], None)
        return (
            k.recent_alerts,
            [
                ["ZADD", k.recent_alerts, *(x for e in entries for x in (now_ms, e.alert_id))],
                ["HSET", k.alerts_by_id, *(x for e in entries for x in (e.alert_id, e.doc.decode()))],
                ["TRIM", k.recent_alerts, k.alerts_by_id, self.recent_max],
            ],
            None,
        )

    async def _run(self, items: list[Item]) -> set[str]:
        """apply.lua once per slot group; returns the customers of groups refused by compare-and-set."""
        items = [it for it in items if it[1]]
        groups = group_by_slot(items, lambda it: it[0], cluster=self.cluster)
        calls = [ApplyCall(g[0][0], pack([op for it in g for op in it[1]])) for g in groups]
        results = await self._many(self._apply, [(c.keys(), c.argv()) for c in calls])
        failed: set[str] = set()
        for group, result in zip(groups, results, strict=True):
            if isinstance(result, ResponseError) and "state changed meanwhile" in str(result):
                failed.update(it[2] for it in group if it[2] is not None)
            elif isinstance(result, BaseException):
                raise result
        return failed

    # -- the outbox ----------------------------------------------------------------------------------
    def _box(self, cid: str) -> str:
        return self.keys.customer_outbox(cid) if cid else self.keys.dropoff_outbox

    async def published(self, entries: list[OutboxEntry], score: int, now_ms: int | None = None) -> None:
        """The broker acknowledged these: remove them from their outboxes (unless a newer version of the
        alert was saved meanwhile) and from the index (unless re-armed). ``score``: their index score when
        claimed or saved; ``now_ms``: also note them as recent alerts (a sweep's, which the save did not)."""
        if not entries:
            return
        k = self.keys
        boxes: dict[str, list[str]] = {}
        for e in entries:
            if not e.legacy:
                boxes.setdefault(e.cid, []).extend((e.alert_id, e.doc.decode()))
        items: list[Item] = [
            (self._box(cid), [["HDELEQ", self._box(cid), *flat]], None) for cid, flat in boxes.items()
        ]
        items.append(
            (k.alerts_outbox, [["ZREMEQ", k.alerts_outbox, score, *(e.member for e in entries)]], None)
        )
        if now_ms is not None:
            items.append(self._recent(entries, now_ms))
        await self._run(items)

    async def claim_outbox(
        self, now_ms: int, lease_ms: int, limit: int
    ) -> list[tuple[str, OutboxEntry | None]]:
        """Outbox index entries past their grace (their worker failed or died after saving), leased to this
        worker for ``lease_ms`` so that concurrent sweeps do not both publish them, each with the alert as
        its outbox holds it now (None: gone, published already)."""
        claim = ClaimOutboxCall(self.keys.alerts_outbox, now_ms, lease_ms, limit)
        members = [m.decode() for m in await self._claim_outbox(keys=claim.keys(), args=claim.argv())]
        if not members:
            return []
        # A member left by the version that kept the alert JSON itself in the index is published as it is.
        legacy = {
            m: OutboxEntry("", orjson.loads(m)["alert_id"], m.encode(), legacy=True)
            for m in members
            if m.startswith("{")
        }
        pipe = self.r.pipeline(transaction=False)
        split = [m.rpartition("|") for m in members if m not in legacy]
        for cid, _, aid in split:
            pipe.hget(self._box(cid), aid)
        found = iter(await pipe.execute())
        out: list[tuple[str, OutboxEntry | None]] = []
        for m in members:
            if m in legacy:
                out.append((m, legacy[m]))
                continue
            cid, _, aid = m.rpartition("|")
            doc = next(found)
            out.append((m, None if doc is None else OutboxEntry(cid, aid, bytes(doc))))
        return out

    async def forget_outbox(self, members: list[str], score: int) -> None:
        """Index entries whose alert is gone from its outbox (published already)."""
        if members:
            await self._run(
                [(self.keys.alerts_outbox, [["ZREMEQ", self.keys.alerts_outbox, score, *members]], None)]
            )
