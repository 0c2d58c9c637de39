"""The detector's claims and reads on the detector-wide slot ({<p>:det}): due stall timers, drop-off cells
ready to judge and their history. Each claim is one single-slot script, so with several workers each timer
and cell is taken by exactly one."""

from __future__ import annotations

from services.common.keys import Keys
from services.common.redis_conn import AsyncClient
from services.gap_detector.script_calls import ClaimMinutesCall, ClaimTimersCall


class ClaimQueries:
    def __init__(self, client: AsyncClient, keys: Keys) -> None:
        self.r, self.keys = client, keys
        self._claim_timers = client.register_script(ClaimTimersCall.source())
        self._claim_minutes = client.register_script(ClaimMinutesCall.source())

    async def claim_timers(
        self, wm: int, now_ms: int, lease_ms: int, limit: int
    ) -> list[tuple[str, str, int]]:
        """Due timers as (customer id, journey type, deadline), now leased to this worker."""
        call = ClaimTimersCall(self.keys.timers, self.keys.timers_inflight, wm, now_ms, lease_ms, limit)
        flat = await self._claim_timers(keys=call.keys(), args=call.argv())
        out = []
        for i in range(0, len(flat), 2):
            member = flat[i].decode() if isinstance(flat[i], bytes) else str(flat[i])
            cid, _, journey = member.partition("|")
            out.append((cid, journey, int(float(flat[i + 1]))))
        return out

    async def release_timers(self, claimed: list[tuple[str, str, int]]) -> None:
        """End this worker's lease of timers it claimed and could not fire: the next claim (this worker's
        retried tick, or any worker's) takes them at once instead of after the lease. XX: a timer
        another worker took meanwhile is not touched."""
        if claimed:
            members = {f"{cid}|{journey}": 0 for cid, journey, _ in claimed}
            await self.r.zadd(self.keys.timers_inflight, members, xx=True)

    async def claim_cells(self, newest_minute: int, limit: int) -> list[tuple[str, int]]:
        """Queued drop-off cells of minutes up to ``newest_minute``, as (cell key, minute)."""
        call = ClaimMinutesCall(self.keys.dropoff_pending, self.keys.dropoff_judged, newest_minute, limit)
        got = await self._claim_minutes(keys=call.keys(), args=call.argv())
        out = []
        for raw in got:
            cell, _, minute = (raw.decode() if isinstance(raw, bytes) else str(raw)).rpartition("|")
            out.append((cell, int(minute)))
        return out

    async def cell_history(self, minutes: list[int]) -> dict[int, dict[bytes, bytes]]:
        """HGETALL of each drop-off minute hash (fields '<cell>': volume, '<cell>|d': drop-offs)."""
        pipe = self.r.pipeline(transaction=False)
        for m in minutes:
            pipe.hgetall(self.keys.dropoff_minute(m))
        return dict(zip(minutes, await pipe.execute(), strict=True))

    async def dropoff_unalerted(self, cells: list[tuple[str, int]]) -> list[bool]:
        """True for the cell-minutes whose spike was not raised before (marked '!a|<cell>' with the spike
        in the drop-off outbox, in one call)."""
        pipe = self.r.pipeline(transaction=False)
        for cell, minute in cells:
            pipe.hexists(self.keys.dropoff_minute(minute), "!a|" + cell)
        return [not x for x in await pipe.execute()]

    async def pending_timers(self) -> int:
        return int(await self.r.zcard(self.keys.timers))
