"""Erasure of one customer (DELETE /api/v1/customers/{id}): everything of it and of the ids merged
into it, in the steps services.api.core.erase plans (one MULTI/EXEC on a single Redis, one per hash slot on
Redis Cluster, each safe to repeat), followed by an audit record without PII."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from services.api.core.alerts import belongs_to, timer_belongs_to
from services.api.core.erase import Step, erase_steps, existence_probes
from services.api.store import JourneyReader
from services.common.keys import Keys
from services.common.redis_conn import is_cluster_client
from services.common.timeutil import format_ms


@dataclass(frozen=True)
class ErasureReport:
    customer_id: str
    aliases: int
    identifiers: int
    keys: int
    timers: int
    alerts: int
    erased_at: str


async def erase_customer(store: JourneyReader, cid: str, now_ms: int) -> ErasureReport | None:
    """Erase ``cid`` (resolved to its survivor) with all its aliases; None when nothing is known of it."""
    r, k = store.redis, store.keys
    survivor = await store.survivor(cid)
    cids = await store.related_ids(survivor) | {cid}
    probes = existence_probes(k, cids)
    if not await store.call(lambda: r.exists(*probes)):
        return None

    async def linked_ids() -> set[bytes]:
        pipe = r.pipeline(transaction=False)
        for c in sorted(cids):
            pipe.smembers(k.customer_ids(c))
        return {m for ms in await pipe.execute() for m in ms}

    id_keys = sorted(k.identifier(m.decode()) for m in await store.call(linked_ids))
    timers = {zset: await _timer_members(r, zset, cids) for zset in (k.timers, k.timers_inflight)}
    alert_ids = [a async for a, raw in r.hscan_iter(k.alerts_by_id) if belongs_to(raw, cids)]
    outcomes = await _merge_outcomes_naming(r, k, cids)
    steps = erase_steps(k, cids, id_keys=id_keys, outcome_keys=outcomes, timers=timers, alert_ids=alert_ids)
    counts = await _run(store, steps)
    deleted = counts.get("keys", 0) + counts.get("identifiers", 0)
    report = ErasureReport(
        survivor,
        len(cids) - 1,
        len(id_keys),
        deleted,
        sum(map(len, timers.values())),
        len(alert_ids),
        format_ms(now_ms),
    )
    # Audited after the fact, so the record states what was removed. Counts and the pseudonymous id only.
    fields: dict[Any, Any] = {n: str(v) for n, v in asdict(report).items()}
    await store.call(lambda: r.xadd(k.erasure_audit, fields))
    return report


async def _run(store: JourneyReader, steps: list[Step]) -> dict[str, int]:
    """Run the steps in order: all in one transaction on a single Redis, one transaction per step (one
    hash slot each) on a cluster. Returns the summed replies of the commands that count something."""
    r = store.redis
    batches = [steps] if not is_cluster_client(r) else [[s] for s in steps]
    counts: dict[str, int] = {}
    for batch in batches:
        commands = [c for step in batch for c in step.commands]

        def transaction(commands: list[Any] = commands) -> Any:
            pipe = r.pipeline(transaction=True)
            for c in commands:
                getattr(pipe, c.method)(*c.args)
            return pipe.execute()

        for command, reply in zip(commands, await store.call(transaction), strict=True):
            if command.counts:
                counts[command.counts] = counts.get(command.counts, 0) + int(reply)
    return counts


async def _timer_members(r: Any, zset: str, cids: set[str]) -> list[bytes]:
    """Members '<cid>|<journey_type>' of these customers; erasure is rare, a ZSCAN is fine."""
    found: list[bytes] = []
    for c in sorted(cids):
        found += [m async for m, _ in r.zscan_iter(zset, match=f"{c}|*") if timer_belongs_to(m, cids)]
    return found


async def _merge_outcomes_naming(r: Any, keys: Keys, cids: set[str]) -> list[str]:
    """The stitcher's merge-outcome replay records (kept a week, keyed by event id) that name these
    customers. The events that merged them are in their timelines, so no SCAN of the key space is
    needed; records of events the touchpoint cap already dropped expire on their own."""
    pipe = r.pipeline(transaction=False)
    for c in sorted(cids):
        pipe.zrange(keys.timeline(c), 0, -1)
    candidates = sorted({keys.merge_outcome(e.decode()) for ids in await pipe.execute() for e in ids})
    names = [f'"{c}"'.encode() for c in cids]
    found: list[str] = []
    for i in range(0, len(candidates), 500):
        chunk = candidates[i : i + 500]
        for key, value in zip(chunk, await r.mget(chunk), strict=True):
            if value is not None and any(n in value for n in names):
                found.append(key)
    return found
