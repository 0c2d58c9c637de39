"""Thin adapter: the stitcher's Lua scripts behind one typed call, the same on a single Redis and a cluster.

``stitch`` runs a batch in steps, each one script call per hash slot (docs/stitcher.md, "On Redis Cluster"):

1. ``identity.lua`` resolves every event's customer in the identity graph's one slot (atomic, in arrival
   order: merges, conflicts, new identifiers, retention of the graph);
2. ``journey_take.lua`` reads the journeys of customers an event merged away (their own slots);
3. ``journey.lua`` writes, per surviving customer, the folded touchpoints and then the batch's events
   (one call on a single Redis, one per slot on a cluster, pipelined);
4. ``journey_drop.lua`` removes what step 2 took;
5. ``canonical.lua`` checks that no customer written in step 3 was merged away meanwhile by another
   worker; one that was is folded into its survivor the same way (2-4), so no touchpoint is stranded.

Every step is safe to repeat after a crash (the Kafka loop retries the whole batch): a replayed merge
outcome folds again, which finds nothing or finishes what a crash interrupted. ``core.model.StitchModel``
is the same in memory, in the same order. Key names come from ``Keys``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec
import orjson
from redis.asyncio.cluster import RedisCluster

from services.common.keys import Keys
from services.common.limits import MAX_ALIAS_HOPS
from services.common.redis_conn import AsyncClient, group_by_slot
from services.common.scripts import Script
from services.stitcher.adapters.script_calls import (
    CanonicalCall,
    DropCall,
    IdentityCall,
    JourneyCall,
    TakeCall,
)
from services.stitcher.core.identifiers import IDENTIFIER_TYPES
from services.stitcher.core.identity import Outcome, Resolution
from services.stitcher.core.journey import Facts, Stitched
from services.stitcher.core.model import StitchInput

OUTCOME_TTL_MS = 7 * 86_400_000  # redeliveries come within minutes; a week is ample
# A journey's keys are re-armed to retention + slack only once under retention (a customer written every
# batch costs a PTTL, not a PEXPIRE per key); its identity graph is kept one slack longer, so no
# identifier expires while the journey it leads to lives (docs/stitcher.md, "Retention").
TTL_SLACK_DIVISOR = 256
PACKAGE = "services.stitcher.adapters"
_PACK = msgspec.msgpack.Encoder().encode


@dataclass(slots=True)
class Taken:
    """A merged-away customer's journey as journey_take.lua read it."""

    ids: list[str]  # event ids, oldest first
    scores: list[str]
    touchpoints: list[bytes]
    masks: list[str]  # flat id_key, masked value, ...
    truncated: bool


@dataclass(slots=True)
class Work:
    """What journey.lua writes into one customer: folded journeys first, then the batch's events."""

    folded: list[Taken] = field(default_factory=list)
    events: list[tuple[int, StitchInput]] = field(default_factory=list)  # (index in the batch, event)


class RedisStitchStore:
    def __init__(
        self,
        client: AsyncClient,
        keys: Keys,
        limits: Mapping[str, int],
        max_touchpoints: int,
        retention_ms: int,
    ) -> None:
        self.keys = keys
        self.cluster = isinstance(client, RedisCluster)
        self._identity = Script(client, PACKAGE, "identity.lua")
        self._journey = Script(client, PACKAGE, "journey.lua")
        self._take = Script(client, PACKAGE, "journey_take.lua")
        self._drop = Script(client, PACKAGE, "journey_drop.lua")
        self._canonical = Script(client, PACKAGE, "canonical.lua")
        slack = retention_ms // TTL_SLACK_DIVISOR
        self.max_touchpoints, self.journey_keep_ms, self.journey_ttl_ms = (
            max_touchpoints,
            retention_ms,
            retention_ms + slack,
        )
        # The fields of identity.lua's call that never change; each batch replaces the rest.
        self._identity_fixed = IdentityCall(
            identifier_keys=[],
            outcome_keys=[],
            id_head=keys.identifier(""),
            customer_head=keys.customer(""),
            customer_ids_head=keys.customer_ids(""),
            alias_head=keys.alias(""),
            aliases_of_head=keys.aliases_of(""),
            outcome_head=keys.merge_outcome(""),
            now_ms=0,
            outcome_ttl_ms=OUTCOME_TTL_MS,
            graph_keep_ms=retention_ms + slack,
            graph_ttl_ms=retention_ms + 2 * slack,
            max_alias_hops=MAX_ALIAS_HOPS,
            type_limits=tuple(x for t in IDENTIFIER_TYPES for x in (t, limits[t])),
            batch=b"",
            evidence_head=keys.evidence(""),
            blocked_head=keys.blocked(""),
        )

    async def stitch(self, batch: Sequence[StitchInput], now_ms: int) -> list[Stitched]:
        """Resolve every event's customer and write its touchpoint; one Stitched per event, in order."""
        if not batch:
            return []
        resolutions, finals = await self.resolve(batch, now_ms)
        losers = sorted({o.loser for r in resolutions for o in r.outcomes if o.kind == "merge"})
        taken, work = await self.take_into({loser: finals.get(loser, loser) for loser in losers})
        for x, (p, r) in enumerate(zip(batch, resolutions, strict=True)):
            cid = r.customer_id
            work.setdefault(finals.get(cid, cid), Work()).events.append((x, p))
        statuses = await self.write(work, len(batch))
        await self.drop(taken)
        await self.settle_aliases(list(work))
        return [Stitched(r, s) for r, s in zip(resolutions, statuses, strict=True)]

    # -- step 1 ---------------------------------------------------------------------------------
    async def resolve(
        self, batch: Sequence[StitchInput], now_ms: int
    ) -> tuple[list[Resolution], dict[str, str]]:
        """Every event's customer (identity.lua), and the survivor now of each one merged away since."""
        return parse_identity(await self._identity(*self.identity_call(batch, now_ms).call()))

    def identity_call(self, batch: Sequence[StitchInput], now_ms: int) -> IdentityCall:
        """identity.lua's call: the batch's identifier keys (each once, first appearance first), then every
        event's merge-outcome key; small fields as one flat MessagePack list."""
        items: list[Any] = []
        add = items.extend
        seen: dict[str, None] = {}
        for p in batch:
            names = [i.key for i in p.idents]
            seen.update(dict.fromkeys(names))
            # occurred_ms as text: the script hands it back to Redis verbatim (first_seen_ms).
            add((p.event_id, str(p.occurred_ms), p.mint, len(names), *names))
        fixed = self._identity_fixed
        id_head, out_head = fixed.id_head, fixed.outcome_head
        return replace(
            fixed,
            identifier_keys=[id_head + k for k in seen],
            outcome_keys=[out_head + p.event_id for p in batch],
            now_ms=now_ms,
            batch=_PACK(items),
        )

    # -- steps 2 and 4 --------------------------------------------------------------------------
    def journey_keys(self, cid: str) -> list[str]:
        k = self.keys
        return [k.timeline(cid), k.touchpoints(cid), k.summary(cid), k.masked(cid)]

    async def take(self, losers: Sequence[str]) -> dict[str, Taken]:
        calls = [TakeCall(self.journey_keys(c)).call() for c in losers]
        replies = await self._take.many(calls) if calls else []
        out = {}
        for cid, (flat, tps, masks, truncated) in zip(losers, replies, strict=True):
            # Decoded: Redis' cmsgpack has no 'bin' type, so journey.lua gets these back as str.
            out[cid] = Taken(
                [b.decode() for b in flat[::2]],
                [b.decode() for b in flat[1::2]],
                tps,
                [b.decode() for b in masks],
                truncated == b"1",
            )
        return out

    async def take_into(self, survivor_of: Mapping[str, str]) -> tuple[dict[str, Taken], dict[str, Work]]:
        """Step 2 for merged-away customers (in the mapping's order): their journeys read, and the work
        that folds each non-empty one into its survivor (step 3 adds the batch's events to it)."""
        taken = await self.take(list(survivor_of))
        work: dict[str, Work] = {}
        for loser, survivor in survivor_of.items():
            if taken[loser].ids:
                work.setdefault(survivor, Work()).folded.append(taken[loser])
        return taken, work

    async def drop(self, taken: Mapping[str, Taken]) -> None:
        calls = [DropCall(self.journey_keys(c), t.ids).call() for c, t in taken.items() if t.ids]
        if calls:
            await self._drop.many(calls)

    # -- step 3 ---------------------------------------------------------------------------------
    async def write(self, work: Mapping[str, Work], n: int) -> list[int]:
        """journey.lua over ``work``, one call per slot group; the status of each batch event, in order."""
        statuses = [0] * n
        groups = group_by_slot(work.items(), lambda kv: self.keys.cust_tag(kv[0]), cluster=self.cluster)
        replies = await self._journey.many([self.journey_call(g).call() for g in groups])
        for group, reply in zip(groups, replies, strict=True):
            order = [x for _, w in group for x, _ in w.events]
            for x, status in zip(order, reply, strict=True):
                statuses[x] = int(status)
        return statuses

    def journey_call(self, group: Sequence[tuple[str, Work]]) -> JourneyCall:
        keys: list[str] = []
        items: list[Any] = []
        add = items.extend
        tps: list[bytes] = []
        for cid, w in group:
            keys += self.journey_keys(cid)
            masks = [m for t in w.folded for m in t.masks]
            n_folded = sum(len(t.ids) for t in w.folded)
            add((int(any(t.truncated for t in w.folded)), n_folded, len(masks) // 2, len(w.events)))
            for t in w.folded:
                for eid, score, tp in zip(t.ids, t.scores, t.touchpoints, strict=True):
                    f = Facts.of(orjson.loads(tp))
                    add((eid, score, f.channel, f.department, f.journey_type, f.stage, f.nps, f.direction))
                    tps.append(tp)
            add(masks)
            for _, p in w.events:
                f = p.facts
                # occurred_ms as text: the script hands it back to Redis verbatim (ZADD score).
                add((p.event_id, str(p.occurred_ms), len(p.idents)))
                for i in p.idents:
                    add((i.key, i.masked))
                add((f.channel, f.department, f.journey_type, f.stage, f.nps, f.direction))
                tps.append(p.touchpoint)
        return JourneyCall(
            customer_keys=keys,
            max_touchpoints=self.max_touchpoints,
            keep_ms=self.journey_keep_ms,
            ttl_ms=self.journey_ttl_ms,
            work=_PACK(items),
            touchpoints=tps,
        )

    # -- step 5 ---------------------------------------------------------------------------------
    async def settle_aliases(self, written: list[str]) -> None:
        """Fold any customer written above that another worker merged away meanwhile (it resolved before
        the merge, this wrote after the merge's fold read): until none is left, at most MAX_ALIAS_HOPS
        rounds (each round follows a newer merge)."""
        for _ in range(MAX_ALIAS_HOPS):
            if not written:
                return
            check = CanonicalCall([self.keys.alias(c) for c in written], self.keys.alias(""), MAX_ALIAS_HOPS)
            reply = await self._canonical(*check.call())
            moved = {c: s.decode() for c, s in zip(written, reply, strict=True) if s}
            if not moved:
                return
            taken, work = await self.take_into(dict(sorted(moved.items())))
            await self.write(work, 0)
            await self.drop(taken)
            written = list(work)


def parse_identity(reply: Sequence[Any]) -> tuple[list[Resolution], dict[str, str]]:
    """identity.lua's reply: per event (customer id, '' or outcome JSON), then {customer: survivor now}."""
    flat, finals = reply
    out = []
    for x in range(0, len(flat), 2):
        cid, extra = flat[x], flat[x + 1]
        cid = cid.decode() if isinstance(cid, bytes) else cid
        # A replayed outcome names the customer as it was; the reply has its survivor now.
        out.append(resolution_of([cid, *orjson.loads(extra)[1:]]) if extra else Resolution(cid))
    now = {finals[i].decode(): finals[i + 1].decode() for i in range(0, len(finals), 2)}
    return out, now


def resolution_of(item: list[Any]) -> Resolution:
    """[customer_id, conflict types, outcomes] as the script encodes it (also in the merge-outcome keys)."""
    cid, conflicts, outcomes = item
    # cjson encodes an empty Lua table as {}; read it as an empty list.
    return Resolution(
        cid,
        tuple(conflicts or ()),
        tuple(
            Outcome(kind, survivor, loser, tuple(types or ()), limit or None)
            for kind, survivor, loser, types, limit in (outcomes or ())
        ),
    )
