"""Thin adapter: the two batch Lua scripts (identity resolution, journey store) behind typed calls.

Each call is exactly one round trip (EVALSHA) per batch; key names come from ``Keys`` and are passed
to the scripts through ARGV. Transient Redis errors are retried by the caller (``with_retry``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import Any

import orjson
import redis.asyncio as aioredis

from services.common.keys import Keys
from services.stitcher.core.batch import Prepared
from services.stitcher.core.identifiers import IDENTIFIER_TYPES
from services.stitcher.core.identity import Outcome, Resolution
from services.stitcher.core.journey import Facts
from services.stitcher.core.stitch import touchpoint

OUTCOME_TTL_MS = 7 * 86_400_000  # redeliveries come within minutes; a week is ample
_MARK = "\x00CID\x00"


def _lua(name: str) -> str:
    return files("services.stitcher.adapters").joinpath(name).read_text()


def _split(template: str) -> tuple[str, str]:
    head, _, tail = template.partition(_MARK)
    return head, tail


class RedisStitchStore:
    def __init__(self, client: aioredis.Redis, keys: Keys, limits: Mapping[str, int], max_touchpoints: int,
                 retention_ms: int) -> None:
        self._identity = client.register_script(_lua("identity.lua"))
        self._journey = client.register_script(_lua("journey.lua"))
        self._id_args: list[Any] = [keys.identifier(""), keys.customer(""), keys.customer_ids(""),
                                    keys.alias(""), keys.aliases_of(""), keys.merge_outcome(""), 0,
                                    OUTCOME_TTL_MS]
        for id_type in IDENTIFIER_TYPES:
            self._id_args += [id_type, limits[id_type]]
        self._j_args: list[Any] = [*_split(keys.timeline(_MARK)), *_split(keys.touchpoints(_MARK)),
                                   *_split(keys.summary(_MARK)), *_split(keys.masked(_MARK)),
                                   keys.alias(""), keys.aliases_of(""), max_touchpoints, retention_ms]

    async def resolve(self, batch: Sequence[Prepared], now_ms: int) -> list[Resolution]:
        """Identity resolution of a whole batch, atomically, in arrival order."""
        if not batch:
            return []
        args = list(self._id_args)
        args[6] = now_ms
        items = [(p.event["event_id"], str(p.occurred_ms), p.mint, [i.key for i in p.idents]) for p in batch]
        args.append(orjson.dumps(items))
        raw = await self._identity(args=args)
        return [_resolution(r) for r in orjson.loads(raw)]

    async def write(self, stitched: Sequence[Mapping[str, Any]]) -> list[int]:
        """Write a batch of stitched events to the journey store; one status per event (core.journey)."""
        if not stitched:
            return []
        items = []
        for st in stitched:
            tp = touchpoint(st)
            f = Facts.of(tp)
            masks = st.get("masked", {})
            typed = ((k, k.split(":", 1)[0]) for k in st["identity_keys"])
            # Numbers travel as strings: Lua's cjson would turn epoch milliseconds into lossy doubles.
            items.append((st["customer_id"], st["event_id"], str(st["occurred_at_ms"]),
                          orjson.dumps(tp).decode(), f.channel, f.department, f.journey_type, f.stage, f.nps,
                          f.direction, [(k, masks[t]) for k, t in typed if t in masks]))
        return [int(s) for s in await self._journey(args=[*self._j_args, orjson.dumps(items)])]


def _resolution(item: list[Any]) -> Resolution:
    cid, conflicts, outcomes = item
    # cjson encodes an empty Lua table as {}; read it as an empty list.
    return Resolution(cid, tuple(conflicts or ()), tuple(
        Outcome(kind, survivor, loser, tuple(types or ()), limit or None)
        for kind, survivor, loser, types, limit in (outcomes or ())
    ))
