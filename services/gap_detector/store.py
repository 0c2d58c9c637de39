"""The detector's Redis adapter: one script call to load a batch of customers (aliases resolved, unfolded
losers included, watermark advanced), one pipeline to save it, and the claim scripts for timers and
drop-off minutes. No rule logic here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson
import redis.asyncio as aioredis

from services.common.keys import Keys
from services.gap_detector.core.state import CustomerState, decode_state, encode_state

PLACEHOLDER = "@CID@"
DROPOFF_TTL_S = 3 * 86_400  # stalls land in a cell up to an SLA after its minute


def _lua(name: str) -> str:
    return resources.files("services.gap_detector").joinpath(f"lua/{name}.lua").read_text()


def _pairs(flat: Any) -> dict[bytes, bytes]:
    """An HGETALL reply as cjson encoded it (a flat list; an empty one arrives as {})."""
    if not isinstance(flat, list):
        return {}
    return {str(flat[i]).encode(): str(flat[i + 1]).encode() for i in range(0, len(flat), 2)}


@dataclass(slots=True)
class Loaded:
    """A customer as loaded: the survivor's state, unfolded losers, and what was stored (for diffs)."""

    cid: str
    state: CustomerState
    losers: list[tuple[str, CustomerState, dict[bytes, bytes]]] = field(default_factory=list)
    stored_timers: dict[str, int] = field(default_factory=dict)
    open_docs: dict[bytes, bytes] = field(default_factory=dict)


def _snapshot(raw: dict[str, Any]) -> tuple[CustomerState, dict[str, int], dict[bytes, bytes]]:
    timers = {k: int(v) for k, v in raw["timers"].items()} if isinstance(raw["timers"], dict) else {}
    open_docs = _pairs(raw["open"])
    return decode_state(_pairs(raw["det"]), timers, open_docs), timers, open_docs


@dataclass(slots=True)
class Save:
    """Everything one batch writes, applied by one ``apply.lua`` call."""

    customers: list[Loaded] = field(default_factory=list)
    write_state: set[str] = field(default_factory=set)  # customers whose det hash changed
    new_alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # cid -> alerts
    aggregate_alerts: list[dict[str, Any]] = field(default_factory=list)
    closed: dict[str, list[str]] = field(default_factory=dict)
    cells: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    finished_timers: list[str] = field(default_factory=list)  # in-flight members done with
    extra_timers: dict[str, int] = field(default_factory=dict)  # superseded-stall members -> deadline
    clock: dict[str, Any] | None = None  # advance the watermark after the writes (see watermark.lua)

    def add_cells(self, cells: dict[tuple[str, int], list[int]]) -> None:
        for k, (v, d) in cells.items():
            acc = self.cells.setdefault(k, [0, 0])
            acc[0] += v
            acc[1] += d


class DetectorStore:
    def __init__(self, client: aioredis.Redis, keys: Keys, retention_ms: int, recent_max: int) -> None:
        self.r, self.keys = client, keys
        self.retention_s = max(1, retention_ms // 1000)
        self.recent_max = recent_max
        self._load = client.register_script(_lua("watermark") + _lua("load"))
        self._claim_timers = client.register_script(_lua("claim_timers"))
        self._claim_minutes = client.register_script(_lua("claim_minutes"))
        self._apply = client.register_script(_lua("watermark") + _lua("apply"))
        self._templates = [keys.alias(PLACEHOLDER), keys.aliases_of(PLACEHOLDER),
                           keys.detector_state(PLACEHOLDER), keys.open_alerts(PLACEHOLDER)]

    async def load(self, cids: list[tuple[str, str]],
                   clock: dict[str, Any] | None = None) -> tuple[int | None, dict[str, Loaded]]:
        """Load (customer id, extra loser or '') pairs. ``clock`` ({parts, now, idle, lateness}) moves the
        watermark. Returns it and, per asked id, the survivor's Loaded (asked ids may share a survivor)."""
        args: list[Any] = [*self._templates, "" if clock is None else orjson.dumps(clock)]
        for cid, extra in cids:
            args += [cid, extra]
        keys = [self.keys.watermark, self.keys.timers, self.keys.watermark_parts]
        raw = orjson.loads(await self._load(keys=keys, args=args))
        by_survivor: dict[str, Loaded] = {}
        by_asked: dict[str, Loaded] = {}
        for item in raw["customers"]:
            loaded = by_survivor.get(item["cid"])
            if loaded is None:
                state, timers, open_docs = _snapshot(item)
                loaded = Loaded(item["cid"], state, [], timers, open_docs)
                by_survivor[item["cid"]] = loaded
                for lraw in item["losers"] if isinstance(item["losers"], list) else []:
                    lstate, _, lopen = _snapshot(lraw)
                    loaded.losers.append((lraw["cid"], lstate, lopen))
            by_asked[item["asked"]] = loaded
        wm = raw["wm"]
        return (int(wm) if wm is not False else None), by_asked

    async def save(self, batch: Save, now_ms: int) -> None:
        """Every write of a batch as one ``apply.lua`` call: atomic and a single round trip; then (in the
        same script) the watermark moves, never before the state it lets timers fire on is written."""
        k = self.keys
        ops: list[list[Any]] = []
        for loaded in batch.customers:
            self._save_customer(ops, loaded, batch)
        for alerts in [*batch.new_alerts.values(), batch.aggregate_alerts]:
            for alert in alerts:
                ops.append(["ZADD", k.recent_alerts, now_ms, alert["alert_id"]])
                ops.append(["HSET", k.alerts_by_id, alert["alert_id"], orjson.dumps(alert).decode()])
        for (cell, minute), (volume, drops) in batch.cells.items():
            mkey = k.dropoff_minute(minute)
            if volume:
                ops.append(["HINCRBY", mkey, cell, volume])
            if drops:
                ops.append(["HINCRBY", mkey, cell + "|d", drops])
            ops.append(["EXPIRE", mkey, DROPOFF_TTL_S])
            ops.append(["ZADD", k.dropoff_pending, minute, f"{cell}|{minute}"])
        for member, deadline in batch.extra_timers.items():
            ops.append(["ZADD", k.timers, deadline, member] if deadline >= 0 else ["ZREM", k.timers, member])
        if batch.finished_timers:
            ops.append(["ZREM", k.timers_inflight, *batch.finished_timers])
        if ops or batch.clock is not None:
            clock = b"" if batch.clock is None else orjson.dumps(batch.clock)
            await self._apply(args=[orjson.dumps(ops), k.recent_alerts, k.alerts_by_id, self.recent_max,
                                    k.watermark, k.watermark_parts, clock])

    def _save_customer(self, ops: list[list[Any]], loaded: Loaded, batch: Save) -> None:
        k, cid, state = self.keys, loaded.cid, loaded.state
        det, opened = k.detector_state(cid), k.open_alerts(cid)
        for loser, lstate, lopen in loaded.losers:
            ops.append(["DEL", k.detector_state(loser), k.open_alerts(loser)])
            if lstate.marks:
                ops.append(["ZREM", k.timers, *(f"{loser}|{j}" for j in lstate.marks)])
            moved = [x for aid, doc in lopen.items() if aid.decode() in state.open_alerts
                     for x in (aid.decode(), doc.decode())]
            if moved:
                ops.append(["HSET", opened, *moved])
        if cid in batch.write_state or loaded.losers:
            ops.append(["HSET", det, *(x.decode() for kv in encode_state(state).items() for x in kv)])
            ops.append(["EXPIRE", det, self.retention_s])
        for journey, deadline in state.timers.items():
            if loaded.stored_timers.get(journey) != deadline:
                ops.append(["ZADD", k.timers, deadline, f"{cid}|{journey}"])
        gone = [f"{cid}|{j}" for j in loaded.stored_timers if j not in state.timers]
        if gone and cid in batch.write_state:
            ops.append(["ZREM", k.timers, *gone])
        alerts = [a for a in batch.new_alerts.get(cid, []) if a["status"] == "open"]
        if alerts:
            docs = [x for a in alerts for x in (a["alert_id"], orjson.dumps(a).decode())]
            ops.append(["HSET", opened, *docs])
        closed = batch.closed.get(cid, [])
        if closed:
            ops.append(["HDEL", opened, *closed])
        if alerts or loaded.losers:
            ops.append(["EXPIRE", opened, self.retention_s])

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

    async def cell_history(self, minutes: list[int]) -> dict[int, dict[str, tuple[int, int]]]:
        """Per drop-off minute, cell key -> (volume, drop-offs), from one pipeline of HGETALLs."""
        pipe = self.r.pipeline(transaction=False)
        for m in minutes:
            pipe.hgetall(self.keys.dropoff_minute(m))
        out: dict[int, dict[str, tuple[int, int]]] = {}
        for m, raw in zip(minutes, await pipe.execute(), strict=True):
            counts: dict[str, list[int]] = {}
            for name, value in raw.items():
                if name.startswith(b"!"):
                    continue  # '!a|<cell>': the spike-raised marks
                if name.endswith(b"|d") and name.count(b"|") == 3:  # '<journey>|<stage>|<channel>|d'
                    counts.setdefault(name[:-2].decode(), [0, 0])[1] = int(value)
                else:
                    counts.setdefault(name.decode(), [0, 0])[0] = int(value)
            out[m] = {cell: (v, d) for cell, (v, d) in counts.items()}
        return out

    async def mark_dropoff_alerted(self, cells: list[tuple[str, int]]) -> list[bool]:
        """HSETNX '!a|<cell>': True for the cells whose spike was not raised before."""
        pipe = self.r.pipeline(transaction=False)
        for cell, minute in cells:
            pipe.hsetnx(self.keys.dropoff_minute(minute), "!a|" + cell, 1)
        return [bool(x) for x in await pipe.execute()]

    async def pending_timers(self) -> int:
        return int(await self.r.zcard(self.keys.timers))
