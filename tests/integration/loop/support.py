"""Shared by the services' commit tests: a handler wrapper that records what it handled (and may fail),
and a loop run in a task until a condition holds, with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from services.common.kafka_loop import KafkaLoop, Offsets, Outbox, Record


class Recording:
    """Wraps a service's handler: remembers every batch it handled, may fail before handling."""

    def __init__(self, inner: Any, failing: Callable[[], bool] = lambda: False) -> None:
        self.inner, self.failing = inner, failing
        self.handled: list[Record] = []
        self.attempts = 0

    async def handle(self, records: list[Record], out: Outbox) -> None:
        self.attempts += 1
        if self.failing():
            raise RuntimeError("handler failed")
        await self.inner.handle(records, out)
        self.handled += records

    async def tick(self, out: Outbox) -> None:
        await self.inner.tick(out)

    def last_plus_one(self) -> Offsets:
        """What the loop must have committed: the last handled offset + 1 of each (topic, partition)."""
        out: Offsets = {}
        for r in self.handled:
            out[(r.topic, r.partition)] = max(out.get((r.topic, r.partition), 0), r.offset + 1)
        return out

    def last_plus_one_by_partition(self) -> dict[int, int]:
        """The same for a worker reading one topic, by partition."""
        return {p: o for (_, p), o in self.last_plus_one().items()}


class Running:
    """A loop running in a task; ``until`` polls a condition with a deadline (the loop must not die)."""

    def __init__(self, loop: KafkaLoop) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(loop.run(self.stop))

    async def until(self, done: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            assert not self.task.done(), self.task.exception()
            assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.1)  # polling a condition with a deadline

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


async def run_until(loop: KafkaLoop, done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    running = Running(loop)
    try:
        await running.until(done, what, timeout)
    finally:
        await running.close()
