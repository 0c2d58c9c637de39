"""The gap detector's watermark, from evidence only (docs/RULES.md, "Stalls only on evidence"). Pure.

A stall says "no successor came before the deadline". That is only known once (a) every channel-events
partition that could carry the successor has been stitched past the deadline, and (b) the gap detectors
have read everything the stitchers published by then. Lag, a backlog or a restart therefore delay the
watermark; none of them can move it.

(a) ``input_candidate``: what the stitchers' reports (services/common/progress.py) prove, minus the
    lateness. Live clock: a partition drained up to wall time W proves W even without events (the absence
    of input is evidence once the input is read); event clock (replays): a partition proves the newest
    event time stitched from it, and a drained partition that has been quiet for ``idle_ms`` stops holding
    the others back.
(b) ``seen_evidence``: the oldest seen-through time over every partition of the detector's inputs. A
    candidate noted at wall time S applies once that evidence reaches S: everything the stitchers had
    published when the candidate was noted has been handled and committed by a detector.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.common.progress import InputProgress

LIVE, EVENT = "live", "event"


def input_candidate(
    inputs: Mapping[int, InputProgress], partitions: int, clock: str, idle_ms: int, lateness_ms: int
) -> int | None:
    """The watermark the input partitions ``0..partitions-1`` prove; None while any never reported."""
    if partitions <= 0:
        return None
    holding: list[int] = []
    newest = 0
    for p in range(partitions):
        progress = inputs.get(p)
        if progress is None:
            return None  # no stitcher has proven anything about it: nothing is known
        if clock == LIVE:
            holding.append(max(progress.event_ms, progress.seen_ms))
            continue
        newest = max(newest, progress.event_ms)
        if progress.seen_ms - progress.grew_ms < idle_ms:
            holding.append(progress.event_ms)  # still growing, or not drained since it last grew
    if holding:
        return min(holding) - lateness_ms
    return newest - lateness_ms if newest > 0 else None


def seen_evidence(seen: Mapping[str, int], expected: Iterable[str]) -> int | None:
    """The wall time through which every expected detector input (``'<topic>:<partition>'``) is seen."""
    oldest: int | None = None
    for key in expected:
        ms = seen.get(key)
        if ms is None:
            return None
        oldest = ms if oldest is None else min(oldest, ms)
    return oldest


def expected_inputs(counts: Mapping[str, int]) -> list[str]:
    """Every partition of the detector's input topics, as ``seen_evidence`` keys."""
    return [f"{topic}:{p}" for topic, n in sorted(counts.items()) for p in range(n)]
