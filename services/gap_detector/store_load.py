"""What the detector's Redis adapter reads for a batch: aliases resolved in the identity graph's slot
(``resolve.lua``), then the customers' states grouped by slot (``load.lua``), a cached state used only while
Redis holds the same token; and a split's extra reads. Kept apart from store.py (the save) because loading
shares nothing with it but the client; ``LoadQueries`` is a base of DetectorStore, whose __init__ sets the
attributes it declares."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.commands.core import AsyncScript

from services.common.limits import MAX_ALIAS_HOPS, MAX_LOSERS_PER_LOAD
from services.common.redis_conn import group_by_slot
from services.gap_detector.script_calls import LoadCall, ResolveCall
from services.gap_detector.store_slots import SlotCalls
from services.gap_detector.store_types import Cached, Loaded, Loser, StateCache, decoded, pack


class LoadQueries(SlotCalls):
    cache: StateCache
    _resolve: AsyncScript
    _load: AsyncScript
    _alias_tpl: str
    _aliases_of_tpl: str
    _state_tpl: str
    _open_tpl: str

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
