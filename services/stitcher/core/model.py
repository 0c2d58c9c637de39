"""The whole stitcher in memory: decode -> identity graph -> stitched events -> journey store.

The same pure steps the worker runs, with IdentityGraph/JourneyStore standing in for the two Redis
scripts. Used by the property tests and as the oracle the Redis path is checked against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from services.stitcher.core.batch import Raw, Split, outputs, prepare
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.identity import IdentityGraph, Resolution
from services.stitcher.core.journey import JourneyStore
from services.stitcher.core.stitch import IdentifierHasher, touchpoint


class InMemoryStitcher:
    def __init__(self, hasher: IdentifierHasher, limits: Mapping[str, int], max_touchpoints: int,
                 policy: DecodePolicy | None = None) -> None:
        self.hasher, self.policy = hasher, policy or DecodePolicy()
        self.graph = IdentityGraph(limits)
        self.store = JourneyStore(max_touchpoints)
        self.stitched: list[dict[str, Any]] = []
        self.merges: list[dict[str, Any]] = []
        self.rejected: Split = Split()

    def process(self, values: Iterable[bytes], now_ms: int) -> None:
        """Stitch and store events one at a time, in the given arrival order."""
        for value in values:
            split = prepare([Raw(value, None, {})], self.hasher, now_ms, self.policy)
            self.rejected.rejected.extend(split.rejected)
            resolutions: list[Resolution] = [
                self.graph.resolve(p.event["event_id"], p.occurred_ms, [i.key for i in p.idents], p.mint)
                for p in split.ready]
            out = outputs(split.ready, resolutions, now_ms)
            self.merges.extend(out.merges)
            for st in out.stitched:
                self.stitched.append(st)
                self.write(st)

    def write(self, st: Mapping[str, Any]) -> int:
        masks = {k: st["masked"][k.split(":", 1)[0]] for k in st["identity_keys"]}
        return self.store.write(self.graph.alias, self.graph.aliases_of, st["customer_id"], st["event_id"],
                                st["occurred_at_ms"], orjson.dumps(touchpoint(st)), masks)

    def journeys_without_labels(self) -> set[tuple[Any, ...]]:
        """Every journey as (ordered event ids, summary, masks), customer ids left out."""
        return {
            (tuple(sorted(j.timeline, key=lambda e: (j.timeline[e], e))),
             tuple(sorted(j.summary.items())), tuple(sorted(j.masked.items())))
            for j in self.store.journeys.values()
        }

    def event_partition(self) -> set[frozenset[str]]:
        return {frozenset(j.timeline) for j in self.store.journeys.values()}
