"""Thin adapter: the stitcher's batch Lua script (stitch.lua) behind one typed call.

``stitch`` is one round trip (EVALSHA) per batch: every event's customer is resolved and its touchpoint
written into that customer's journey, atomically, in arrival order (core.model.StitchModel is the same in
memory). Key names come from ``Keys`` and reach the script through ARGV. Transient Redis errors are
retried by the caller (the Kafka loop retries the whole batch; the script is idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import Any

import msgspec
import orjson
import redis.asyncio as aioredis

from services.common.keys import Keys
from services.stitcher.core.identifiers import IDENTIFIER_TYPES
from services.stitcher.core.identity import Outcome, Resolution
from services.stitcher.core.journey import Stitched
from services.stitcher.core.model import StitchInput

OUTCOME_TTL_MS = 7 * 86_400_000  # redeliveries come within minutes; a week is ample
# A customer's keys (journey and identity graph) are re-armed to retention + retention/256 only once under
# retention or when its graph gained keys: a customer written every batch costs a PTTL, not a PEXPIRE per
# key, and no key ever expires sooner than retention after a write.
TTL_SLACK_DIVISOR = 256
_MARK = "\x00CID\x00"
_NOW = 14  # index of now_ms in the script's ARGV (0-based)
_PACK = msgspec.msgpack.Encoder().encode


def _split(template: str) -> tuple[str, str]:
    head, _, tail = template.partition(_MARK)
    return head, tail


class RedisStitchStore:
    def __init__(self, client: aioredis.Redis, keys: Keys, limits: Mapping[str, int], max_touchpoints: int,
                 retention_ms: int) -> None:
        source = files("services.stitcher.adapters").joinpath("stitch.lua").read_text()
        self._script = client.register_script(source)
        self._args: list[Any] = [
            keys.identifier(""), keys.customer(""), keys.customer_ids(""), keys.alias(""),
            keys.aliases_of(""), keys.merge_outcome(""), *_split(keys.timeline(_MARK)),
            *_split(keys.touchpoints(_MARK)), *_split(keys.summary(_MARK)), *_split(keys.masked(_MARK)),
            0, OUTCOME_TTL_MS, max_touchpoints, retention_ms, retention_ms // TTL_SLACK_DIVISOR]
        for id_type in IDENTIFIER_TYPES:
            self._args += [id_type, limits[id_type]]

    async def stitch(self, batch: Sequence[StitchInput], now_ms: int) -> list[Stitched]:
        """Resolve every event's customer and write its touchpoint; one Stitched per event, in order."""
        if not batch:
            return []
        return parse_stitched(await self.call(self.args(batch, now_ms)))

    async def call(self, args: list[Any]) -> list[Any]:
        """The script call alone (the benchmark times building the arguments apart)."""
        return await self._script(args=args)

    def args(self, batch: Sequence[StitchInput], now_ms: int) -> list[Any]:
        """ARGV of stitch.lua for a batch: small fields as one flat MessagePack list (cmsgpack.unpack in the
        script is far cheaper than cjson.decode), then each touchpoint as its own argument (the script's
        Lua cmsgpack has no bin type, and one concatenated blob cut in Lua cost more)."""
        items: list[Any] = []
        add = items.extend
        for p in batch:
            f = p.facts
            # occurred_ms as text: the script hands it back to Redis verbatim (ZADD score, first_seen_ms).
            add((p.event_id, str(p.occurred_ms), p.mint, len(p.idents)))
            for i in p.idents:
                add((i.key, i.masked))
            add((f.channel, f.department, f.journey_type, f.stage, f.nps, f.direction))
        args = list(self._args)
        args[_NOW] = now_ms
        args.append(_PACK(items))
        args += [p.touchpoint for p in batch]
        return args


def parse_stitched(flat: Sequence[Any]) -> list[Stitched]:
    """The script's flat reply (customer id, status, '' or outcome JSON per event) as Stitched records."""
    out = []
    for x in range(0, len(flat), 3):
        cid, status, extra = flat[x], flat[x + 1], flat[x + 2]
        cid = cid.decode() if isinstance(cid, bytes) else cid
        if extra:
            _, conflicts, outcomes = orjson.loads(extra)
            out.append(Stitched(resolution_of([cid, conflicts, outcomes]), status))
        else:
            out.append(Stitched(Resolution(cid), status))
    return out


def resolution_of(item: list[Any]) -> Resolution:
    """[customer_id, conflict types, outcomes] as the script encodes it (also in the merge-outcome keys)."""
    cid, conflicts, outcomes = item
    # cjson encodes an empty Lua table as {}; read it as an empty list.
    return Resolution(cid, tuple(conflicts or ()), tuple(
        Outcome(kind, survivor, loser, tuple(types or ()), limit or None)
        for kind, survivor, loser, types, limit in (outcomes or ())
    ))
