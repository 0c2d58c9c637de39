"""Judging claimed drop-off cell-minutes against their baselines (core/dropoff.py holds the rule): the
history read once per tick, each cell's window slid minute by minute, the gauges set, the spikes returned
with the cell-minutes they mark. Reads Redis through the store; saving and publishing is the processor's."""

from __future__ import annotations

from typing import Any

from services.gap_detector.core.definitions import Definitions
from services.gap_detector.core.dropoff import judge, split_cell
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.store import DetectorStore


class DropoffJudge:
    def __init__(self, defs: Definitions, store: DetectorStore, metrics: DetectorMetrics) -> None:
        self.defs, self.store, self.m = defs, store, metrics
        self._cell_gauges: dict[str, tuple[Any, Any]] = {}

    async def spikes(
        self, cells: list[tuple[str, int]], now: int, hashes: dict[int, dict[bytes, bytes]]
    ) -> list[tuple[tuple[str, int], dict[str, Any]]]:
        """The spikes among ``cells`` not raised before, as ((cell, minute), alert). ``hashes``: the drop-off
        minutes this tick already read (the claims of one tick share most of their history)."""
        defs = self.defs
        spans = {c: defs.thresholds(c.split("|", 1)[0]).dropoff_baseline_minutes for c, _ in cells}
        judged = {m for _, m in cells}  # read again: writes may have re-queued them since
        reach = {(m, spans[c]) for c, m in cells}  # far fewer than cells: a minute holds many cells
        needed = {m - i * 60_000 for m, span in reach for i in range(1, span + 2)} - hashes.keys()
        hashes.update(await self.store.cell_history(sorted(needed | judged)))
        spikes = []
        windows: dict[tuple[str, int], tuple[int, int]] = {}  # (cell, minute) -> its baseline sums
        for cell, minute in sorted(cells):  # a cell's minutes in order: each window slides from the last
            vkey = cell.encode()
            dkey = vkey + b"|d"
            span = spans[cell]
            prev = windows.get((cell, minute - 60_000))
            if prev is None:
                hist_v = hist_d = 0
                for i in range(1, span + 1):
                    h = hashes[minute - i * 60_000]
                    if h:
                        hist_v += int(h.get(vkey, 0))
                        hist_d += int(h.get(dkey, 0))
            else:  # the window of the minute before, plus that minute, minus the one that fell out
                h_in, h_out = hashes[minute - 60_000], hashes[minute - (span + 1) * 60_000]
                hist_v = prev[0] + int(h_in.get(vkey, 0)) - int(h_out.get(vkey, 0))
                hist_d = prev[1] + int(h_in.get(dkey, 0)) - int(h_out.get(dkey, 0))
            windows[(cell, minute)] = (hist_v, hist_d)
            h = hashes[minute]
            j = judge(cell, minute, int(h.get(vkey, 0)), int(h.get(dkey, 0)), [(hist_v, hist_d)], defs, now)
            rate, baseline = self._gauges(cell)
            rate.set(j.rate)
            baseline.set(j.baseline)
            if j.alert is not None:
                spikes.append(((cell, minute), j.alert))
        if not spikes:
            return []
        fresh = await self.store.dropoff_unalerted([c for c, _ in spikes])
        return [(c, a) for (c, a), new in zip(spikes, fresh, strict=True) if new]

    def _gauges(self, cell: str) -> tuple[Any, Any]:
        """The drop-off rate and baseline gauges of a cell (label lookups cost more than the update)."""
        found = self._cell_gauges.get(cell)
        if found is None:
            labels = split_cell(cell)
            found = self._cell_gauges[cell] = (
                self.m.dropoff_rate.labels(*labels),
                self.m.dropoff_baseline.labels(*labels),
            )
        return found
