"""Lua scripts as the services call them: loaded once, run by SHA, one call or many in one round trip.

On Redis Cluster every script call goes to the node of its KEYS' slot (redis-py routes EVALSHA by its
keys and refuses keys of different slots), so a script must be given at least one key and touch nothing
outside that slot; :meth:`Script.many` sends calls of many slots as one pipeline (one round trip per node).
A server that lost its scripts (restart, failover to a replica that never saw SCRIPT LOAD) answers
NOSCRIPT: the script is loaded again (on every primary of a cluster) and the calls re-sent. Scripts are
written to be safe to repeat, which this relies on.

Strict mode (``Script.strict = True``, the test suite's setting) loads scripts with a ``#!lua`` shebang:
Redis 7 then refuses, on a cluster, any key outside the slot of the script's KEYS, even one on the same
node, which legacy scripts are let through with until a resharding moves the slot away. It is off in
production because the server checks every redis.call then: +34 us of Redis CPU per stitched event,
+31 %, measured with bench/stitcher/script_bench.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib.resources import files
from typing import Any, ClassVar

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, SlotNotCoveredError

from services.common.redis_conn import AsyncClient

Call = tuple[Sequence[Any], Sequence[Any]]  # (keys, args)


class Script:
    """One Lua script of a package (``Script(client, "services.stitcher.adapters", "journey.lua")``)."""

    strict: ClassVar[bool] = False  # see the module's docstring

    def __init__(self, client: AsyncClient, package: str, name: str) -> None:
        self.client, self.name = client, name
        self.cluster = isinstance(client, RedisCluster)
        self.source = ("#!lua\n" if self.strict else "") + files(package).joinpath(name).read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        if self.cluster:
            return (await self.many([(keys, args)]))[0]
        if not keys:
            raise ValueError(f"{self.name}: a script call needs a key (it decides the cluster node)")
        try:
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.client.script_load(self.source)
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)

    async def many(self, calls: Sequence[Call]) -> list[Any]:
        """Every call in one pipeline (not a transaction: each script is atomic on its own); replies in
        order. The first error raises, after every call has run."""
        if len(calls) == 1 and not self.cluster:
            return [await self(*calls[0])]
        try:
            return await self._pipelined(calls)
        except NoScriptError:
            await self.client.script_load(self.source)
            return await self._pipelined(calls)

    async def _pipelined(self, calls: Sequence[Call]) -> list[Any]:
        if self.cluster:
            await self.client.initialize()  # a no-op once the slots are known
        pipe = self.client.pipeline(transaction=False)
        for keys, args in calls:
            if not keys:
                raise ValueError(f"{self.name}: a script call needs a key (it decides the cluster node)")
            # execute_command, not pipe.evalsha: redis-py's cluster pipeline blocks the evalsha method (it
            # cannot load scripts on every node itself; here NOSCRIPT loads them, see many()), and routes
            # EVALSHA by its keys like any other command.
            pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args, **self._route(keys))
        return list(await pipe.execute())

    def _route(self, keys: Sequence[Any]) -> dict[str, Any]:
        """On a cluster, the node of the first key's slot, named up front: every key of a script call is
        in that slot, and redis-py would otherwise hash each of them twice (a script of the stitcher
        takes ~2,500 keys). A MOVED or ASK reply (a slot being resharded) is re-sent by redis-py the
        usual way, routed by the keys."""
        if not self.cluster:
            return {}
        assert isinstance(self.client, RedisCluster)
        try:
            return {"target_nodes": self.client.get_node_from_key(keys[0])}
        except SlotNotCoveredError:  # the slot map is being refreshed: let redis-py route by the keys
            return {}
