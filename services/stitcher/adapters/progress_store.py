"""Thin adapter: a stitcher's evidence about its input partitions (services/common/progress.py) into the
hash the gap detectors read (services/gap_detector/core/clock.py), merged by progress.lua."""

from __future__ import annotations

from services.common.keys import Keys
from services.common.progress import InputProgress
from services.common.redis_conn import AsyncClient
from services.common.scripts import Script
from services.stitcher.adapters.script_calls import ProgressCall


class ProgressStore:
    def __init__(self, client: AsyncClient, keys: Keys) -> None:
        self.keys = keys
        self._write = Script(client, ProgressCall.PACKAGE, ProgressCall.SCRIPT)

    async def publish(self, partitions: int | None, reports: dict[int, InputProgress]) -> None:
        flat = [x for p, v in sorted(reports.items()) for x in (p, v.event_ms, v.seen_ms, v.grew_ms)]
        call = ProgressCall(self.keys.clock_inputs, partitions or 0, flat)
        await self._write(call.keys(), call.argv())
