"""The detector's Redis adapter: one script call to load a batch of customers (aliases resolved, unfolded
losers included, and the watermark), one script call to save it, and the claim scripts for timers and
drop-off minutes. No rule logic here.

Both batch scripts avoid JSON inside JSON: ``load.lua`` answers with nested arrays (parsed by hiredis, the
stored field values arrive as the bytes they are) and ``apply.lua`` takes its operations as MessagePack
(unpacked in C by Redis' cmsgpack, no escaping; Redis' cmsgpack knows no 'bin' type, so values go as
str).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import msgspec
import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError, TryAgainError

from services.common.keys import Keys
from services.gap_detector.core.state import (
    CustomerState,
    EncodedBuffer,
    decode_state,
    encode_buffer,
    encode_state,
)

PLACEHOLDER = "@CID@"


class StateConflict(TryAgainError):
    """A customer's state changed in Redis between this batch's load and its save (another worker fired a
    stall of it): nothing of the batch was written; it is retried from the load (a transient fault)."""

DROPOFF_TTL_S = 3 * 86_400  # stalls land in a cell up to an SLA after its minute
OUTBOX_GRACE_MS = 10_000  # the saving worker publishes at once; a sweep takes what is left after this
_pack = msgspec.msgpack.Encoder().encode


def _lua(name: str) -> str:
    return resources.files("services.gap_detector").joinpath(f"lua/{name}.lua").read_text()


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """An HGETALL-style flat reply as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


@dataclass(slots=True)
class Loaded:
    """A customer as loaded: the survivor's state, unfolded losers, and what was stored (for diffs)."""

    cid: str
    state: CustomerState
    losers: list[tuple[str, CustomerState, dict[bytes, bytes]]] = field(default_factory=list)
    stored_timers: dict[str, int] = field(default_factory=dict)
    stored_fields: dict[bytes, bytes] = field(default_factory=dict)  # the state hash as it was
    buffer: EncodedBuffer | None = None  # how its buffer was encoded last (when this worker wrote it)


def _snapshot(raw: list[Any]) -> tuple[str, CustomerState, dict[str, int], dict[bytes, bytes],
                                       dict[bytes, bytes]]:
    """One customer of load.lua's reply: [cid, state hash, timers (journey, deadline)..., open alerts]."""
    cid, det, flat_timers, open_flat = raw
    fields, open_docs = _pairs(det), _pairs(open_flat)
    timers = {flat_timers[i].decode(): int(flat_timers[i + 1]) for i in range(0, len(flat_timers), 2)}
    return cid.decode(), decode_state(fields, timers, open_docs), timers, fields, open_docs


@dataclass(slots=True)
class Save:
    """Everything one batch writes, applied by one ``apply.lua`` call."""

    customers: list[Loaded] = field(default_factory=list)
    write_state: set[str] = field(default_factory=set)  # customers an event was applied to
    new_alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # cid -> alerts
    aggregate_alerts: list[dict[str, Any]] = field(default_factory=list)
    dropoff_alerted: list[tuple[str, int]] = field(default_factory=list)  # (cell, minute) spikes raised
    outbox: list[bytes] = field(default_factory=list)  # the alerts' JSON, saved to the outbox with the batch
    closed: dict[str, list[str]] = field(default_factory=dict)
    cells: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    finished_timers: list[str] = field(default_factory=list)  # in-flight members done with
    extra_timers: dict[str, int] = field(default_factory=dict)  # superseded-stall members -> deadline
    docs: dict[int, bytes] = field(default_factory=dict)  # id(alert) -> its JSON, encoded once per batch
    token: bytes = field(default_factory=lambda: os.urandom(8).hex().encode())  # field 'n' of what it writes
    ops: list[list[Any]] = field(default_factory=list)  # the customers' writes, staged (DetectorStore.stage)
    staged: dict[str, Cached | None] = field(default_factory=dict)  # customer -> its state once written

    def add_cells(self, cells: dict[tuple[str, int], list[int]]) -> None:
        for k, (v, d) in cells.items():
            acc = self.cells.setdefault(k, [0, 0])
            acc[0] += v
            acc[1] += d

    def doc(self, alert: dict[str, Any]) -> bytes:
        """The alert's JSON as published (encoded once for Kafka and both Redis hashes)."""
        encoded = self.docs.get(id(alert))
        if encoded is None:
            encoded = self.docs[id(alert)] = orjson.dumps(alert)
        return encoded


@dataclass(slots=True)
class Cached:
    """A customer's state as this worker saved (or found) it, and the token its state hash holds then."""

    token: bytes
    state: CustomerState
    fields: dict[bytes, bytes]
    buffer: EncodedBuffer


class StateCache:
    """Least recently used customers' decoded state, so a batch need not read and decode it again while
    Redis still holds exactly that: every save that changes a state hash writes a fresh random token into
    it (field ``n``), and load.lua returns the hash only when the token differs (another worker fired a
    stall or folded a merge, the customer was erased, or this worker never saw it).

    ``take`` removes the entry: a batch mutates the state in place, and only a successful save puts it back,
    so a failed batch leaves nothing half-applied here."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[str, Cached] = OrderedDict()
        self.hits = self.misses = 0

    def take(self, cid: str) -> Cached | None:
        return self.items.pop(cid, None)

    def put(self, cid: str, cached: Cached) -> None:
        if self.size <= 0:
            return
        self.items[cid] = cached
        if len(self.items) > self.size:
            self.items.popitem(last=False)


class DetectorStore:
    def __init__(self, client: aioredis.Redis, keys: Keys, retention_ms: int, recent_max: int,
                 cache_size: int = 0) -> None:
        self.r, self.keys = client, keys
        self.cache = StateCache(cache_size)
        self.retention_s = max(1, retention_ms // 1000)
        self.recent_max = recent_max
        self._load = client.register_script(_lua("load"))
        self._claim_timers = client.register_script(_lua("claim_timers"))
        self._claim_minutes = client.register_script(_lua("claim_minutes"))
        self._claim_outbox = client.register_script(_lua("claim_outbox"))
        self._apply = client.register_script(_lua("apply"))
        self._templates = [keys.alias(PLACEHOLDER), keys.aliases_of(PLACEHOLDER),
                           keys.detector_state(PLACEHOLDER), keys.open_alerts(PLACEHOLDER)]

    async def load(self, cids: list[tuple[str, str]]) -> tuple[int | None, dict[str, Loaded]]:
        """Load (customer id, extra loser or '') pairs. Returns the watermark and, per asked id, the
        survivor's Loaded (asked ids may share a survivor)."""
        asks: list[Any] = []
        taken: dict[str, Cached] = {}
        for cid, extra in cids:
            cached = None if cid in taken else self.cache.take(cid)
            if cached is None:
                asks.append((cid, extra))
            else:
                taken[cid] = cached
                asks.append((cid, extra, cached.token.decode(), list(cached.state.marks)))
        # One MessagePack argument: a thousand customers as separate arguments cost more to pack than Lua.
        args: list[str | bytes] = [*self._templates, _pack(asks)]
        keys = [self.keys.watermark, self.keys.timers]
        wm, customers = await self._load(keys=keys, args=args)
        by_survivor: dict[str, Loaded] = {}
        by_asked: dict[str, Loaded] = {}
        for asked, *survivor, losers in customers:
            cid = survivor[0].decode()
            loaded = by_survivor.get(cid)
            if loaded is None:
                if survivor[1] is None:  # the cached state is what Redis holds: only timers were read
                    hit = taken[cid]
                    flat = survivor[2]
                    timers = {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}
                    hit.state.timers = dict(timers)
                    loaded = Loaded(cid, hit.state, [], timers, hit.fields, hit.buffer)
                    self.cache.hits += 1
                else:
                    _, state, timers, fields, _ = _snapshot(survivor)
                    loaded = Loaded(cid, state, [], timers, fields)
                    self.cache.misses += 1
                by_survivor[cid] = loaded
            # Every ask's losers, not only the first ask's: several merges into one survivor in one batch
            # each bring their own loser (the others were left unfolded, their timers firing on their own).
            folded = {lcid for lcid, _, _ in loaded.losers}
            for lraw in losers:
                lcid, lstate, _, _, lopen = _snapshot(lraw)
                if lcid not in folded:
                    folded.add(lcid)
                    loaded.losers.append((lcid, lstate, lopen))
            by_asked[asked.decode()] = loaded
        return (None if wm is None else int(wm)), by_asked

    async def save(self, batch: Save, now_ms: int) -> None:
        """Every write of a batch as one ``apply.lua`` call: atomic and a single round trip. (The watermark
        is not moved here: only evidence that the batch is committed moves it, see core/clock.py.)"""
        k = self.keys
        for loaded in batch.customers:
            if loaded.cid not in batch.staged:
                self.stage(batch, loaded)
        ops = batch.ops
        for alerts in [*batch.new_alerts.values(), batch.aggregate_alerts]:
            for alert in alerts:
                ops.append(["ZADD", k.recent_alerts, now_ms, alert["alert_id"]])
                ops.append(["HSET", k.alerts_by_id, alert["alert_id"], batch.doc(alert).decode()])
        for doc in batch.outbox:  # to publish once saved; a sweep takes them after the grace period
            ops.append(["ZADD", k.alerts_outbox, now_ms + OUTBOX_GRACE_MS, doc.decode()])
        for (cell, minute), (volume, drops) in batch.cells.items():
            mkey = k.dropoff_minute(minute)
            if volume:
                ops.append(["HINCRBY", mkey, cell, volume])
            if drops:
                ops.append(["HINCRBY", mkey, cell + "|d", drops])
            ops.append(["EXPIRE", mkey, DROPOFF_TTL_S])
            ops.append(["ZADD", k.dropoff_pending, minute, f"{cell}|{minute}"])
        for cell, minute in batch.dropoff_alerted:
            ops.append(["HSET", k.dropoff_minute(minute), "!a|" + cell, 1])
        for member, deadline in batch.extra_timers.items():
            ops.append(["ZADD", k.timers, deadline, member] if deadline >= 0 else ["ZREM", k.timers, member])
        if batch.finished_timers:
            ops.append(["ZREM", k.timers_inflight, *batch.finished_timers])
        if ops:
            try:
                await self._apply(args=[_pack(ops), k.recent_alerts, k.alerts_by_id, self.recent_max])
            except ResponseError as exc:
                if "state changed meanwhile" in str(exc):
                    raise StateConflict(str(exc)) from None
                raise
        for cid, cached in batch.staged.items():  # written: what Redis now holds is what this worker has
            if cached is not None:
                self.cache.put(cid, cached)

    def stage(self, batch: Save, loaded: Loaded) -> None:
        """Queue a customer's writes once the batch is done with it (encoding a state just worked on is
        cheaper than coming back to it)."""
        batch.staged[loaded.cid] = self._save_customer(batch.ops, loaded, batch, batch.token)

    def _save_customer(self, ops: list[list[Any]], loaded: Loaded, batch: Save,
                       token: bytes) -> Cached | None:
        """Queue one customer's writes; returns its state as Redis will hold it (None: no token to know
        it by, e.g. a state nothing was written to yet)."""
        k, cid, state = self.keys, loaded.cid, loaded.state
        opened, stored = k.open_alerts(cid), loaded.stored_fields
        # Compare-and-set: the whole batch is refused unless the state hash still holds the token it was
        # loaded with (another worker firing this customer's stall meanwhile makes this batch start over).
        ops.append(["EXPECT", k.detector_state(cid), stored.get(b"n", b"").decode()])
        for loser, lstate, lopen in loaded.losers:
            ops.append(["DEL", k.detector_state(loser), k.open_alerts(loser)])
            if lstate.marks:
                ops.append(["ZREM", k.timers, *(f"{loser}|{j}" for j in lstate.marks)])
            moved = [x.decode() for aid, doc in lopen.items() if aid.decode() in state.open_alerts
                     for x in (aid, doc)]
            if moved:
                ops.append(["HSET", opened, *moved])
        # Only the fields that changed are written (a redelivered event changes none).
        buffer = encode_buffer(state.buffer, loaded.buffer)
        stored, fields = loaded.stored_fields, encode_state(state, buffer.data)
        changed = [x.decode() for name, value in fields.items() if stored.get(name) != value
                   for x in (name, value)]
        if changed:
            det = k.detector_state(cid)
            ops.append(["HSET", det, *changed, "n", token.decode()])
            ops.append(["EXPIRE", det, self.retention_s])
        else:
            token = stored.get(b"n", b"")
        for journey, deadline in state.timers.items():
            if loaded.stored_timers.get(journey) != deadline:
                ops.append(["ZADD", k.timers, deadline, f"{cid}|{journey}"])
        gone = [f"{cid}|{j}" for j in loaded.stored_timers if j not in state.timers]
        if gone and cid in batch.write_state:
            ops.append(["ZREM", k.timers, *gone])
        alerts = [a for a in batch.new_alerts.get(cid, ()) if a["status"] == "open"]
        if alerts:
            ops.append(["HSET", opened, *(x for a in alerts for x in (a["alert_id"], batch.doc(a).decode()))])
        closed = batch.closed.get(cid)
        if closed:
            ops.append(["HDEL", opened, *closed])
        if alerts or loaded.losers:
            ops.append(["EXPIRE", opened, self.retention_s])
        fields[b"n"] = token
        return Cached(token, state, fields, buffer) if token else None

    async def claim_timers(self, wm: int, now_ms: int, lease_ms: int,
                           limit: int) -> list[tuple[str, str, int]]:
        """Due timers as (customer id, journey type, deadline), now leased to this worker."""
        flat = await self._claim_timers(keys=[self.keys.timers, self.keys.timers_inflight],
                                        args=[wm, now_ms, lease_ms, limit])
        out = []
        for i in range(0, len(flat), 2):
            member = flat[i].decode() if isinstance(flat[i], bytes) else str(flat[i])
            cid, _, journey = member.partition("|")
            out.append((cid, journey, int(float(flat[i + 1]))))
        return out

    async def claim_cells(self, newest_minute: int, limit: int) -> list[tuple[str, int]]:
        """Queued drop-off cells of minutes up to ``newest_minute``, as (cell key, minute)."""
        got = await self._claim_minutes(keys=[self.keys.dropoff_pending, self.keys.dropoff_judged],
                                        args=[newest_minute, limit])
        out = []
        for raw in got:
            cell, _, minute = (raw.decode() if isinstance(raw, bytes) else str(raw)).rpartition("|")
            out.append((cell, int(minute)))
        return out

    async def cell_history(self, minutes: list[int]) -> dict[int, dict[bytes, bytes]]:
        """HGETALL of each drop-off minute hash (fields '<cell>': volume, '<cell>|d': drop-offs)."""
        pipe = self.r.pipeline(transaction=False)
        for m in minutes:
            pipe.hgetall(self.keys.dropoff_minute(m))
        return dict(zip(minutes, await pipe.execute(), strict=True))

    async def dropoff_unalerted(self, cells: list[tuple[str, int]]) -> list[bool]:
        """True for the cell-minutes whose spike was not raised before (the save marks them, '!a|<cell>',
        after the alert is acknowledged: a failure in between raises it again rather than never)."""
        pipe = self.r.pipeline(transaction=False)
        for cell, minute in cells:
            pipe.hexists(self.keys.dropoff_minute(minute), "!a|" + cell)
        return [not x for x in await pipe.execute()]

    async def published(self, docs: list[bytes]) -> None:
        """The broker acknowledged these outbox entries: remove them."""
        if docs:
            await self.r.zrem(self.keys.alerts_outbox, *docs)

    async def current_docs(self, alert_ids: list[str]) -> list[bytes | None]:
        """Each alert's JSON as last saved (the recent-alerts hash), None where it has left it."""
        if not alert_ids:
            return []
        found = await self.r.hmget(self.keys.alerts_by_id, alert_ids)
        return [d.encode() if isinstance(d, str) else d for d in found]

    async def claim_outbox(self, now_ms: int, lease_ms: int, limit: int) -> list[bytes]:
        """Outbox entries past their grace (their worker failed or died after saving), leased to this
        worker for ``lease_ms`` so that concurrent sweeps do not both publish them."""
        return [bytes(d) for d in await self._claim_outbox(keys=[self.keys.alerts_outbox],
                                                           args=[now_ms, lease_ms, limit])]

    async def pending_timers(self) -> int:
        return int(await self.r.zcard(self.keys.timers))
