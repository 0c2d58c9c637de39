"""Thin adapter: a stitcher's evidence about its input partitions (services/common/progress.py) into the
hash the gap detectors read (services/gap_detector/core/clock.py), merged by progress.lua."""

from __future__ import annotations

from importlib.resources import files

import redis.asyncio as aioredis

from services.common.keys import Keys
from services.common.progress import InputProgress


class ProgressStore:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        source = files("services.stitcher.adapters").joinpath("progress.lua").read_text()
        self._write = client.register_script(source)

    async def publish(self, partitions: int | None, reports: dict[int, InputProgress]) -> None:
        args: list[int] = [partitions or 0]
        for p, v in sorted(reports.items()):
            args += [p, v.event_ms, v.seen_ms, v.grew_ms]
        await self._write(keys=[self.keys.clock_inputs], args=args)
