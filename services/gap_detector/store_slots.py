"""How the detector's Redis adapter sends its scripts: once per hash-slot group, each on the node of its
slot, at most CONCURRENT_CALLS at once (on a single Redis every group is one call; on a cluster about one
per customer). Kept apart from store.py because it knows how calls travel, not what they read or write;
``SlotCalls`` is a base of DetectorStore, whose __init__ sets the attributes it declares."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import redis.asyncio.cluster as aiocluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

from services.common.keys import Keys
from services.common.redis_conn import AsyncClient, group_by_slot
from services.gap_detector.script_calls import ApplyCall
from services.gap_detector.store_types import pack

# Script calls in flight at once: on a cluster a batch makes about one call per customer (hash slot), and
# redis-py's cluster client refuses a connection beyond 100 per node rather than wait for one.
CONCURRENT_CALLS = 32
Item = tuple[str, list[list[Any]], str | None]  # (a key of the slot, operations, customer they belong to)


async def bounded(calls: list[Coroutine[Any, Any, Any]], return_exceptions: bool = False) -> list[Any]:
    """``asyncio.gather`` with at most CONCURRENT_CALLS of ``calls`` awaited at once."""
    if len(calls) <= CONCURRENT_CALLS:
        return list(await asyncio.gather(*calls, return_exceptions=return_exceptions))
    gate = asyncio.Semaphore(CONCURRENT_CALLS)

    async def one(call: Coroutine[Any, Any, Any]) -> Any:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls), return_exceptions=return_exceptions))


class SlotCalls:
    """Script calls by hash slot: ``_many`` runs any script, ``_run`` the writes (apply.lua)."""

    r: AsyncClient
    keys: Keys
    cluster: bool
    _apply: AsyncScript

    async def _many(self, script: AsyncScript, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run ``script`` once per (keys, args), each on the node of its keys' slot; replies in order, an
        error reply as its exception. On a cluster the calls go as one pipeline (a round trip per node;
        one call per customer otherwise costs ~3x the worker CPU), named by their node up front."""
        if not self.cluster or len(calls) == 1:
            return await bounded([script(keys=k, args=a) for k, a in calls], return_exceptions=True)
        assert isinstance(self.r, aiocluster.RedisCluster)
        await self.r.initialize()  # a no-op once the slots are known
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for _ in range(2):  # a second time after NOSCRIPT (a node restarted or failed over): load, re-send
            pipe = self.r.pipeline(transaction=False)
            for i in todo:
                keys, args = calls[i]
                # execute_command: redis-py's cluster pipeline blocks its evalsha method (it cannot load a
                # script on every node itself), and routes EVALSHA like any command.
                pipe.execute_command(
                    "EVALSHA",
                    script.sha,
                    len(keys),
                    *keys,
                    *args,
                    target_nodes=self.r.get_node_from_key(keys[0]),
                )
            for i, reply in zip(todo, await pipe.execute(raise_on_error=False), strict=True):
                results[i] = reply
            todo = [i for i in todo if isinstance(results[i], NoScriptError)]
            if not todo:
                break
            await self.r.script_load(script.script)
        return results

    async def _run(self, items: list[Item]) -> set[str]:
        """apply.lua once per slot group; returns the customers of groups refused by compare-and-set."""
        items = [it for it in items if it[1]]
        groups = group_by_slot(items, lambda it: it[0], cluster=self.cluster)
        calls = [ApplyCall(g[0][0], pack([op for it in g for op in it[1]])) for g in groups]
        results = await self._many(self._apply, [(c.keys(), c.argv()) for c in calls])
        failed: set[str] = set()
        for group, result in zip(groups, results, strict=True):
            if isinstance(result, ResponseError) and "state changed meanwhile" in str(result):
                failed.update(it[2] for it in group if it[2] is not None)
            elif isinstance(result, BaseException):
                raise result
        return failed
