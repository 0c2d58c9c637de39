"""The stitcher's Redis side in memory, and the whole stitcher in memory.

``StitchModel`` is what the Redis store (adapters/redis_store.py and its scripts) does, step by step: the
identity graph resolves the batch's customers in arrival order, the journeys of customers merged away are
folded into their survivors', then the journey store records each event's masks and adds its touchpoint.
It is the oracle the Redis store is checked against. ``InMemoryStitcher`` runs the worker's pure steps
around it (property tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from services.common.record_codec import decode_merge, decode_stitched
from services.common.records import IdentityMerge, StitchedEvent
from services.stitcher.core.batch import OutTopics, Split, bare_record, outputs, prepare
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.hashed_identifiers import Ident, IdentifierHasher
from services.stitcher.core.identity import Customer, Evidence, IdentityGraph
from services.stitcher.core.journey import Facts, JourneyStore, Stitched
from services.stitcher.core.split import SplitPlan, moves, plan_split, refs

TOPICS = OutTopics("stitched-events", "identity-merges")


class StitchInput(Protocol):
    """What the store needs of a prepared event (core.batch.Prepared carries these fields)."""

    @property
    def event_id(self) -> str: ...
    @property
    def occurred_ms(self) -> int: ...
    @property
    def idents(self) -> Sequence[Ident]: ...
    @property
    def mint(self) -> str: ...
    @property
    def touchpoint(self) -> bytes: ...
    @property
    def facts(self) -> Facts: ...


class StitchModel:
    """IdentityGraph + JourneyStore driven together in the order of the Redis store (redis_store.py):
    the whole batch resolved first, then per surviving customer the journeys merged into it folded in
    (losers by id, each oldest first), then the batch's events written in arrival order."""

    def __init__(self, limits: Mapping[str, int], max_touchpoints: int) -> None:
        self.graph = IdentityGraph(limits)
        self.journeys = JourneyStore(max_touchpoints)

    def stitch(self, batch: Sequence[StitchInput], now_ms: int) -> list[Stitched]:
        graph = self.graph
        resolutions = []
        for p in batch:
            resolutions.append(
                graph.resolve(p.event_id, p.occurred_ms, [i.key for i in p.idents], p.mint, now_ms)
            )
        # Replayed merges fold again: a no-op, or the end of a fold a crash interrupted.
        losers = sorted({o.loser for r in resolutions for o in r.outcomes if o.kind == "merge"})
        for loser in losers:
            self.journeys.fold(graph.canonical(loser), [loser])
        return [
            Stitched(
                r,
                self.journeys.put(
                    graph.canonical(r.customer_id),
                    p.event_id,
                    p.occurred_ms,
                    p.touchpoint,
                    {i.key: i.masked for i in p.idents},
                    p.facts,
                ),
            )
            for p, r in zip(batch, resolutions, strict=True)
        ]

    # -- split (core/split.py) --------------------------------------------------------------------
    def plan(self, cid: str, separate: set[str]) -> SplitPlan:
        g = self.graph
        c = g.customers[cid]
        taken = [x for x in g.customers if x != cid]
        return plan_split(cid, set(c.ids), g.evidence.get(cid, {}), separate, c.first_seen_ms, taken)

    def split(self, plan: SplitPlan) -> None:
        """What split.lua and the journey move do: two graphs from one, touchpoints to their side's."""
        g, cid, new = self.graph, plan.customer, plan.new_customer
        for k in plan.move:
            g.ids[k] = new
        g.customers[cid] = Customer(plan.keep_first_seen_ms, set(plan.keep))
        g.customers[new] = Customer(plan.move_first_seen_ms, set(plan.move))
        if g.alias.get(new) == cid:
            del g.alias[new]
            g.aliases_of[cid].discard(new)
        g.evidence[cid] = {e: Evidence.parse(t) for e, t in plan.keep_evidence.items()}
        g.evidence[new] = {e: Evidence.parse(t) for e, t in plan.move_evidence.items()}
        g.blocked.setdefault(cid, set()).add(new)
        g.blocked.setdefault(new, set()).add(cid)
        old = self.journeys.journeys.get(cid)
        if old is None:
            return
        move_refs, keep_refs = refs(plan.move), refs(plan.keep)
        going = {e for e, tp in old.touchpoints.items() if moves(tp, move_refs, keep_refs)}
        masks = {k: v for k, v in old.masked.items() if k in set(plan.move)}
        if going or masks:  # as split_store.move_journey: nothing to move, nothing rewritten
            self.journeys.fold(new, [], {e: (old.timeline[e], old.touchpoints[e]) for e in going}, masks)
            self.journeys.rebuild(cid, going, set(masks))

    def unsplit(self, cid: str, new: str) -> None:
        """Undo a split: ``new`` merged back into ``cid`` whatever the limits, the block between them gone."""
        g = self.graph
        g.blocked.get(cid, set()).discard(new)
        g.blocked.get(new, set()).discard(cid)
        g._merge(new, cid)
        for c in (cid, new):
            if not g.blocked.get(c, True):
                del g.blocked[c]
        self.journeys.fold(cid, [new])


class InMemoryStitcher:
    """decode -> StitchModel -> stitched events and merge records, one event at a time."""

    def __init__(
        self,
        hasher: IdentifierHasher,
        limits: Mapping[str, int],
        max_touchpoints: int,
        policy: DecodePolicy | None = None,
    ) -> None:
        self.hasher, self.policy = hasher, policy or DecodePolicy()
        self.model = StitchModel(limits, max_touchpoints)
        self.graph, self.store = self.model.graph, self.model.journeys
        self.stitched: list[StitchedEvent] = []
        self.merges: list[IdentityMerge] = []  # merge and conflict records
        self.statuses: list[int] = []
        self.rejected: Split = Split()

    def process(self, values: Iterable[bytes], now_ms: int) -> None:
        """Stitch and store events one at a time, in the given arrival order."""
        for value in values:
            split = prepare([bare_record(value)], self.hasher, now_ms, self.policy)
            self.rejected.rejected.extend(split.rejected)
            done = self.model.stitch(split.ready, now_ms)
            stitched, merges, _ = outputs(split.ready, [s.resolution for s in done], now_ms, TOPICS)
            self.merges.extend(decode_merge(r.value or b"") for r in merges)
            self.stitched.extend(decode_stitched(r.value or b"") for r in stitched)
            self.statuses.extend(s.status for s in done)

    def journeys_without_labels(self) -> set[tuple[Any, ...]]:
        """Every journey as (ordered event ids, summary, masks), customer ids left out."""
        return {
            (
                tuple(sorted(j.timeline, key=lambda e: (j.timeline[e], e))),
                tuple(sorted(j.summary.items())),
                tuple(sorted(j.masked.items())),
            )
            for j in self.store.journeys.values()
        }

    def event_partition(self) -> set[frozenset[str]]:
        return {frozenset(j.timeline) for j in self.store.journeys.values()}
