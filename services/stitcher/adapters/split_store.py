"""Thin adapter: split a customer (or undo a split) in Redis, in steps safe to repeat after a crash.

1. plan (core/split.py) on the customer's identifiers and recorded links as read;
2. ``split.lua`` writes both graphs in the identity graph's slot at once, if the customer's identifiers
   are still those planned on (else plan again: a worker linked or merged meanwhile), keeps the two apart
   (blocked) and stores the split record, which a repeat of the same split finds;
3. the touchpoints whose event's strongest identifier went to the new customer are written into its journey
   (journey.lua, as a fold: a repeat skips what is there), then ``journey_split.lua`` removes them from the
   kept customer's and replaces its summary, if its timeline is still the one read (else read again);
4. the split record goes to ``identity-merges`` (the caller's ``publish``; the same record id on repeat).

A worker that resolved an event to the customer before step 2 and writes it after step 3 leaves it in the
kept journey: ``settle`` runs step 3 again after a grace period (the CLI and the API do).
Undo merges the new customer back (``split.lua`` join, then the journey folds as a merge's).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
import orjson

from services.common.keys import Keys
from services.common.limits import MAX_ALIAS_HOPS
from services.common.redis_conn import AsyncClient
from services.common.script_args import Call
from services.common.scripts import Script
from services.stitcher.adapters.redis_store import PACKAGE, TTL_SLACK_DIVISOR, RedisStitchStore, Taken, Work
from services.stitcher.adapters.script_calls import JourneySplitCall, SplitCall
from services.stitcher.core.identity import Evidence, id_type_of
from services.stitcher.core.journey import JourneyStore
from services.stitcher.core.split import (
    SplitPlan,
    SplitRefused,
    moves,
    plan_split,
    refs,
    separated_by_merge,
    split_id,
)
from services.stitcher.settings import parse_limits

_PACK = msgspec.msgpack.Encoder().encode
ATTEMPTS = 20  # plans refused because a worker changed the customer meanwhile, before giving up
Publish = Callable[[dict[str, Any]], Awaitable[None]]


class SplitBusy(RuntimeError):
    """The customer kept changing under the split (very busy traffic): try again."""


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class SplitStore:
    def __init__(self, client: AsyncClient, keys: Keys, max_touchpoints: int, retention_ms: int) -> None:
        self.client, self.keys, self.cap = client, keys, max_touchpoints
        self.journeys = RedisStitchStore(client, keys, parse_limits(""), max_touchpoints, retention_ms)
        self._split = Script(client, PACKAGE, SplitCall.SCRIPT)
        self._rebuild = Script(client, PACKAGE, JourneySplitCall.SCRIPT)
        k = keys
        self._heads = (
            k.identifier(""),
            k.customer(""),
            k.customer_ids(""),
            k.alias(""),
            k.aliases_of(""),
            k.evidence(""),
            k.blocked(""),
        )
        self.graph_ttl = retention_ms + 2 * (retention_ms // TTL_SLACK_DIVISOR)

    # -- reads ----------------------------------------------------------------------------------------
    async def canonical(self, cid: str) -> str:
        for _ in range(MAX_ALIAS_HOPS):
            nxt = await self.client.get(self.keys.alias(cid))
            if nxt is None:
                return cid
            cid = _text(nxt)
        return cid

    async def graph(self, cid: str) -> tuple[set[str], dict[str, Evidence], int] | None:
        """A live customer's identifiers, recorded links and first seen; None when it has no graph."""
        k = self.keys
        fs = await self.client.hget(k.customer(cid), "first_seen_ms")
        if fs is None:
            return None
        ids = {_text(x) for x in await self.client.smembers(k.customer_ids(cid))}
        raw = await self.client.hgetall(k.evidence(cid))
        return ids, {_text(e): Evidence.parse(_text(t)) for e, t in raw.items()}, int(fs)

    async def record(self, sid: str) -> dict[str, Any] | None:
        raw = await self.client.get(self.keys.split_record(sid))
        return orjson.loads(raw) if raw else None

    # -- split ----------------------------------------------------------------------------------------
    async def split(
        self,
        cid: str,
        *,
        separate: set[str] | None = None,
        merge: tuple[str, str] | None = None,
        by: str,
        now_ms: int,
        publish: Publish | None = None,
        settle_s: float = 0.0,
    ) -> dict[str, Any]:
        """Separate ``separate`` (identifier keys) from ``cid``, or undo the merge ``(event_id, loser)``;
        returns the split record. Repeating the same call finishes or repeats it."""
        cid = await self.canonical(cid)
        asked = sorted(separate) if separate else [f"merge:{merge[0]}:{merge[1]}"] if merge else []
        if not asked:
            raise SplitRefused("name the identifiers to separate or the merge to undo")
        sid = split_id(cid, asked)
        rec = await self.record(sid)
        if rec is None or rec["state"] != "applied":
            rec = await self._split_graph(cid, sid, separate, merge, by, now_ms, rec)
        await self.move_journey(rec)
        if publish is not None:
            await publish(rec)
        if settle_s > 0:
            await asyncio.sleep(settle_s)  # workers that resolved before step 2 have written by now
            await self.move_journey(rec)
        return rec

    async def _split_graph(
        self,
        cid: str,
        sid: str,
        separate: set[str] | None,
        merge: tuple[str, str] | None,
        by: str,
        now_ms: int,
        before: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        for _ in range(ATTEMPTS):
            got = await self.graph(cid)
            if got is None:
                raise SplitRefused("no such customer")
            ids, evidence, first_seen = got
            sep = separate if separate else separated_by_merge(cid, ids, evidence, *merge) if merge else set()
            plan = plan_split(cid, ids, evidence, set(sep), first_seen)
            if await self.client.exists(self.keys.customer(plan.new_customer)):
                plan = plan_split(cid, ids, evidence, set(sep), first_seen, [plan.new_customer])
            plan = msgspec.structs.replace(plan, split_id=sid)
            gen = int(before["generation"]) + 1 if before else 1
            rec = record_of(plan, "applied", gen, by, now_ms)
            reply = await self._split(*self.split_call(plan, rec, now_ms))
            status = _text(reply[0])
            if status in ("done", "again"):
                return (await self.record(sid)) or rec
        raise SplitBusy("the customer kept changing while it was being split; try again")

    def split_call(self, plan: SplitPlan, rec: Mapping[str, Any], now_ms: int) -> Call:
        body = {
            "customer": plan.customer,
            "new": plan.new_customer,
            "digest": plan.ids_digest,
            "keep": list(plan.keep),
            "move": list(plan.move),
            "keep_ev": [x for kv in sorted(plan.keep_evidence.items()) for x in kv],
            "move_ev": [x for kv in sorted(plan.move_evidence.items()) for x in kv],
            "keep_fs": plan.keep_first_seen_ms,
            "move_fs": plan.move_first_seen_ms,
        }
        return SplitCall(
            self.keys.split_record(plan.split_id),
            *self._heads,
            now_ms,
            self.graph_ttl,
            "split",
            orjson.dumps(rec),
            _PACK(body),
        ).call()

    async def move_journey(self, rec: Mapping[str, Any]) -> int:
        """Step 3: the kept customer's touchpoints that belong to the new one moved there; how many."""
        cid, new = rec["customer"], rec["new_customer"]
        move_keys, keep_keys = set(rec["move"]), set(rec["keep"])
        move_refs, keep_refs = refs(move_keys), refs(keep_keys)
        for _ in range(ATTEMPTS):
            t = (await self.journeys.take([cid]))[cid]
            going = [i for i, tp in enumerate(t.touchpoints) if tp and moves(tp, move_refs, keep_refs)]
            masks = [
                (t.masks[i], t.masks[i + 1]) for i in range(0, len(t.masks), 2) if t.masks[i] in move_keys
            ]
            if not going and not masks:
                return 0
            moved = Taken(
                [t.ids[i] for i in going],
                [t.scores[i] for i in going],
                [t.touchpoints[i] for i in going],
                [x for m in masks for x in m],
                False,
            )
            await self.journeys.write({new: Work(folded=[moved])}, 0)
            digest = hashlib.sha1(
                ",".join(f"{e} {s}" for e, s in zip(t.ids, t.scores, strict=True)).encode()
            ).hexdigest()
            summary = rebuilt_summary(t, set(moved.ids), self.cap)
            body = {
                "gone": moved.ids,
                "masks": [m for m, _ in masks],
                "summary": [x for kv in sorted(summary.items()) for x in kv],
            }
            rebuild = JourneySplitCall(self.journeys.journey_keys(cid), digest, _PACK(body))
            if await self._rebuild(*rebuild.call()):
                return len(going)
        raise SplitBusy("the journey kept changing while its touchpoints were being moved; try again")

    # -- undo, allow ----------------------------------------------------------------------------------
    async def undo(self, sid: str, *, by: str, now_ms: int, publish: Publish | None = None) -> dict[str, Any]:
        """Merge the split's new customer back into the kept one (their journeys folded as a merge's)."""
        rec = await self.record(sid)
        if rec is None:
            raise SplitRefused("no such split")
        # Either may have merged into someone else since (an allowed merge, another link): join what they
        # are now; already one customer, the join only lifts the block and marks the record undone.
        cid, new = await self.canonical(rec["customer"]), await self.canonical(rec["new_customer"])
        if rec["state"] == "applied":
            done = {**rec, "state": "undone", "undone_by": by, "undone_at_ms": now_ms}
            body = {"customer": cid, "new": new}
            await self._split(
                *SplitCall(
                    self.keys.split_record(sid),
                    *self._heads,
                    now_ms,
                    self.graph_ttl,
                    "join",
                    orjson.dumps(done),
                    _PACK(body),
                ).call()
            )
            rec = (await self.record(sid)) or done
        taken = await self.journeys.take([new]) if new != cid else {}
        if new != cid and taken[new].ids:
            await self.journeys.write({cid: Work(folded=[taken[new]])}, 0)
            await self.journeys.drop(taken)
        if publish is not None:
            await publish(rec)
        return rec

    async def allow(self, a: str, b: str) -> int:
        """An admin lets two customers a split separated merge again (the next event linking them)."""
        return int(await self.client.srem(self.keys.blocked(a), b)) + int(
            await self.client.srem(self.keys.blocked(b), a)
        )


def record_of(plan: SplitPlan, state: str, generation: int, by: str, now_ms: int) -> dict[str, Any]:
    """The split record kept in the graph's slot (what a repeat, an undo and the published record use)."""
    return {
        "split_id": plan.split_id,
        "customer": plan.customer,
        "new_customer": plan.new_customer,
        "separated": list(plan.separated),
        "keep": list(plan.keep),
        "move": list(plan.move),
        "identifier_types": sorted({id_type_of(k) for k in plan.move}),
        "state": state,
        "generation": generation,
        "by": by,
        "at_ms": now_ms,
    }


def rebuilt_summary(t: Taken, gone: set[str], cap: int) -> dict[str, str]:
    """The summary of what stays of a taken journey, as core/journey.py builds it (truncated kept)."""
    kept = [
        (e, int(s), tp)
        for e, s, tp in zip(t.ids, t.scores, t.touchpoints, strict=True)
        if e not in gone and tp
    ]
    return JourneyStore(cap).replay(kept, t.truncated).summary
