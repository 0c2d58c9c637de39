"""The journey map in Redis: the worker's load and compare-and-set write, the API's window reads.

Thin adapter: it moves bytes; ``core/`` decides what they mean. One script call per group of customers
(shard) and batch writes their states and the deltas their changes make (``lua/apply.lua``); every key of a
call shares the group's hash tag, so it runs on one Redis Cluster slot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import orjson

from services.common.redis_conn import AsyncClient
from services.common.scripts import Script
from services.journey_map.core.bounds import Bounds
from services.journey_map.core.contribution import Delta
from services.journey_map.keys import MapKeys
from services.journey_map.script_calls import ApplyCall

HOUR_MS, MINUTE_MS = 3_600_000, 60_000
Hash = dict[bytes, bytes]


class Conflict(RuntimeError):
    """A customer's state changed between the batch's read and its write (another worker took the
    partition meanwhile); the loop retries the batch, which plans it again from the new state."""


def _text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    return raw.decode() if isinstance(raw, bytes) else raw


class MapStore:
    def __init__(
        self,
        client: AsyncClient,
        keys: MapKeys,
        *,
        minute_ttl_ms: int,
        hour_ttl_ms: int,
        state_ttl_ms: int,
        pain_members: int,
    ) -> None:
        self.client, self.keys = client, keys
        self.minute_ttl_ms, self.hour_ttl_ms, self.state_ttl_ms = minute_ttl_ms, hour_ttl_ms, state_ttl_ms
        self.pain_cap = pain_members
        self._apply = Script(client, ApplyCall.PACKAGE, ApplyCall.SCRIPT)

    # -- worker ------------------------------------------------------------------------------------------
    async def load(self, cids: Iterable[str]) -> dict[str, tuple[bytes | None, str]]:
        """customer -> (stored state or None, its generation ('' when none))."""
        order = sorted(set(cids))
        if not order:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for cid in order:
            pipe.hmget(self.keys.customer(cid), ["s", "g"])
        replies = await pipe.execute()
        return {cid: (state, _text(gen)) for cid, (state, gen) in zip(order, replies, strict=True)}

    async def write(
        self, shard: int, states: Mapping[str, tuple[bytes, str]], deltas: Iterable[Delta]
    ) -> None:
        """Write one shard's changed customers (new state, generation read) with their deltas, atomically;
        Conflict when a state moved on since it was read."""
        payload = self.payload(states, deltas)
        stem = self.keys.stem(shard)
        call = ApplyCall(
            now_key=self.keys.now(shard),
            stem=stem,
            minute_ttl_ms=self.minute_ttl_ms,
            hour_ttl_ms=self.hour_ttl_ms,
            state_ttl_ms=self.state_ttl_ms,
            pain_members=self.pain_cap,
            minutes_kept=self.minute_ttl_ms // MINUTE_MS + 60,
            hours_kept=self.hour_ttl_ms // HOUR_MS + 24,
            payload=payload,
        )
        reply = await self._apply(call.keys(), call.argv())
        if int(reply[0]) != 1:
            raise Conflict(f"journey-map state of {_text(reply[1])} changed while the batch was planned")

    @staticmethod
    def payload(states: Mapping[str, tuple[bytes, str]], deltas: Iterable[Delta]) -> bytes:
        minutes: dict[tuple[str, str], int] = defaultdict(int)
        hours: dict[tuple[str, str], int] = defaultdict(int)
        now: dict[str, int] = defaultdict(int)
        add: dict[tuple[str, str], int] = {}
        remove: set[tuple[str, str]] = set()
        for delta in deltas:
            for (minute, journey, stage, persona, channel, metric), n in delta.counts.items():
                field = f"{journey}|{stage}|{persona}|{channel}|{metric}"
                minutes[(str(minute), field)] += n
                hours[(str(minute // HOUR_MS * HOUR_MS), field)] += n
            for nkey, n in delta.now.items():
                now["|".join(nkey)] += n
            for mkey, members in delta.remove.items():
                remove.update(("|".join(mkey), m) for m in members)
            for mkey, scored in delta.add.items():
                add.update({("|".join(mkey), m): t for m, t in scored.items()})
        return orjson.dumps(
            {
                "c": [[cid, gen, state.decode()] for cid, (state, gen) in states.items()],  # b"": delete
                "m": [[b, f, str(n)] for (b, f), n in minutes.items() if n],
                "h": [[b, f, str(n)] for (b, f), n in hours.items() if n],
                "n": [[f, str(n)] for f, n in now.items() if n],
                "rm": [[k, m] for k, m in sorted(remove) if (k, m) not in add],
                "add": [[k, m, str(t)] for (k, m), t in add.items()],
            }
        )

    # -- API -----------------------------------------------------------------------------------------------
    async def window(self, since_ms: int, until_ms: int) -> tuple[list[Hash], list[Hash]]:
        """(counter hashes covering [since, until) — whole hours from the hour buckets, the edges from the
        minute buckets —, the customers-in-stage hashes), over every shard."""
        first_hour = -(-since_ms // HOUR_MS) * HOUR_MS
        end_hour = until_ms // HOUR_MS * HOUR_MS
        pipe = self.client.pipeline(transaction=False)
        shards = range(self.keys.shards)
        for shard in shards:
            if first_hour < end_hour:
                pipe.zrangebyscore(self.keys.index(shard, "h"), first_hour, end_hour - HOUR_MS)
                pipe.zrangebyscore(
                    self.keys.index(shard, "m"), since_ms // MINUTE_MS * MINUTE_MS, first_hour - 1
                )
                pipe.zrangebyscore(self.keys.index(shard, "m"), end_hour, until_ms - 1)
            else:
                pipe.zrangebyscore(self.keys.index(shard, "h"), 1, 0)  # nothing: keeps three per shard
                pipe.zrangebyscore(
                    self.keys.index(shard, "m"), since_ms // MINUTE_MS * MINUTE_MS, until_ms - 1
                )
                pipe.zrangebyscore(self.keys.index(shard, "m"), 1, 0)
        found = await pipe.execute()
        pipe = self.client.pipeline(transaction=False)
        for i, shard in enumerate(shards):
            hours, *minutes = found[3 * i : 3 * i + 3]
            for h in hours:
                pipe.hgetall(self.keys.hour(shard, int(h)))
            for m in (*minutes[0], *minutes[1]):
                pipe.hgetall(self.keys.minute(shard, int(m)))
        for shard in shards:
            pipe.hgetall(self.keys.now(shard))
        replies = await pipe.execute()
        n = self.keys.shards
        return list(replies[:-n]), list(replies[-n:])

    async def pain_members(self, journey: str, stage: str, kind: str, limit: int) -> list[tuple[str, int]]:
        """The newest members behind a pain point over every shard: ('<cid>|<alert>|<persona>', ms)."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zrevrange(self.keys.pain(shard, journey, stage, kind), 0, limit - 1, withscores=True)
        out = [(_text(m), int(score)) for rows in await pipe.execute() for m, score in rows]
        out.sort(key=lambda r: (-r[1], r[0]))
        return out


async def erase_customers(store: MapStore, cids: Iterable[str], bounds: Bounds) -> int:
    """Erase customers from the journey map (the API's DELETE /api/v1/customers/{id}, for the survivor and
    every id merged into it): their map states, their contribution to the counters and their entries among
    the customers behind pain points. Returns how many states went. Safe to repeat."""
    from services.journey_map.core.batch import erase

    for _ in range(3):  # a worker writing one of them meanwhile makes the write refuse: plan again
        loaded = await store.load(cids)
        out = erase(cids, {c: s for c, (s, _) in loaded.items()}, bounds)
        shards: dict[int, tuple[dict[str, tuple[bytes, str]], list[Delta]]] = defaultdict(lambda: ({}, []))
        for cid, state in out.states.items():
            states, deltas = shards[store.keys.shard_of(cid)]
            states[cid] = (state, loaded[cid][1])
            deltas.append(out.deltas[cid])
        try:
            for shard, (states, deltas) in shards.items():
                await store.write(shard, states, deltas)
        except Conflict:
            continue
        return len(out.states)
    raise Conflict("journey-map states kept changing during the erasure; repeat it")
