"""Thin adapter: the evidence clock's Redis side (core/clock.py holds the rules). Two script calls per tick:
``read`` stores this worker's seen-through times and returns everyone's plus the stitchers' reports;
``advance`` queues the candidate the reports prove and applies those the evidence covers."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.keys import Keys
from services.common.progress import InputProgress
from services.common.redis_conn import AsyncClient
from services.gap_detector.script_calls import ClockReadCall, WatermarkAdvance

PARTITIONS_FIELD = b"n"  # in clock:inputs, beside the partitions' reports (written by the stitchers)
MAX_PENDING = 1000  # candidates waiting for evidence: minutes of ticks, a few tens of KB


@dataclass(frozen=True, slots=True)
class ClockReading:
    seen: dict[str, int]  # '<topic>:<partition>' -> seen-through ms, over every detector
    inputs: dict[int, InputProgress]  # channel-events partition -> what the stitchers proved
    input_partitions: int | None  # how many partitions channel-events has, as the stitchers saw it
    watermark: int | None


class ClockStore:
    def __init__(self, client: AsyncClient, keys: Keys) -> None:
        self.keys = keys
        self._read = client.register_script(ClockReadCall.source())
        self._advance = client.register_script(WatermarkAdvance.source())

    async def read(self, own_seen: dict[str, int]) -> ClockReading:
        k = self.keys
        call = ClockReadCall(
            k.clock_seen,
            k.clock_inputs,
            k.watermark,
            [x for key, ms in sorted(own_seen.items()) for x in (key, ms)],
        )
        seen, inputs, wm = await self._read(keys=call.keys(), args=call.argv())
        reports = {inputs[i]: inputs[i + 1] for i in range(0, len(inputs), 2)}
        count = reports.pop(PARTITIONS_FIELD, None)
        return ClockReading(
            {seen[i].decode(): int(seen[i + 1]) for i in range(0, len(seen), 2)},
            {int(p): InputProgress.parse(v) for p, v in reports.items()},
            None if count is None else int(count),
            None if wm is None else int(wm),
        )

    async def advance(self, noted_ms: int, candidate: int | None, evidence_ms: int | None) -> int | None:
        k = self.keys
        update = WatermarkAdvance(k.clock_pending, k.watermark, noted_ms, candidate, evidence_ms, MAX_PENDING)
        wm = await self._advance(keys=update.keys(), args=update.argv())
        return None if wm is None else int(wm)
