"""What a stitcher proves about its input, per channel-events partition: the evidence the gap detector's
stall timers wait for (docs/RULES.md, "Stalls only on evidence"). Pure: no I/O.

A stitcher publishes, for each input partition it holds, three numbers once the records they cover are
stitched, published and committed:

- ``event_ms``: the newest ``occurred_at`` it stitched from the partition;
- ``seen_ms``: a wall time before which every record appended to the partition has been stitched (the
  Kafka loop's ``seen_through``) — the input is drained up to then, so nothing older is still queued;
- ``grew_ms``: the wall time ``event_ms`` last grew (a partition drained well after that is quiet).

Values only move forward: two stitchers that held the same partition in turn merge into the larger ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InputProgress:
    event_ms: int = 0
    seen_ms: int = 0
    grew_ms: int = 0

    def encode(self) -> str:
        return f"{self.event_ms}:{self.seen_ms}:{self.grew_ms}"

    @classmethod
    def parse(cls, raw: bytes | str) -> InputProgress:
        text = raw.decode() if isinstance(raw, bytes) else raw
        event_ms, seen_ms, grew_ms = (int(part) for part in text.split(":"))
        return cls(event_ms, seen_ms, grew_ms)

    def merge(self, other: InputProgress) -> InputProgress:
        """The larger evidence of both (what the Redis script does when a stitcher writes)."""
        event_ms, grew_ms = (
            (self.event_ms, self.grew_ms)
            if self.event_ms >= other.event_ms
            else (other.event_ms, other.grew_ms)
        )
        return InputProgress(event_ms, max(self.seen_ms, other.seen_ms), grew_ms)


class ProgressTracker:
    """A stitcher's view of its input partitions: newest event times observed in handled batches become
    evidence only once their offsets are committed (``committed``); ``report`` adds the loop's seen-through
    times and returns what changed since the last report."""

    def __init__(self) -> None:
        self._handled: dict[int, int] = {}  # partition -> newest event ms handled, not committed yet
        self._proven: dict[int, InputProgress] = {}
        self._reported: dict[int, InputProgress] = {}

    def observe(self, partition: int, event_ms: int) -> None:
        if event_ms > self._handled.get(partition, 0):
            self._handled[partition] = event_ms

    def committed(self, partitions: list[int], now_ms: int) -> None:
        """The batch holding every observed event of ``partitions`` is committed."""
        for p in partitions:
            event_ms = self._handled.pop(p, None)
            if event_ms is None:
                continue
            cur = self._proven.get(p, InputProgress())
            if event_ms > cur.event_ms:
                self._proven[p] = InputProgress(event_ms, cur.seen_ms, now_ms)

    def unreported(self, seen: dict[int, int]) -> dict[int, InputProgress]:
        """What to publish now: each partition whose evidence grew, given the loop's seen-through times
        (a handled record of a revoked partition is published either way: its outputs are)."""
        for p, seen_ms in seen.items():
            cur = self._proven.get(p, InputProgress())
            if seen_ms > cur.seen_ms:
                self._proven[p] = InputProgress(cur.event_ms, seen_ms, cur.grew_ms)
        return {p: v for p, v in self._proven.items() if self._reported.get(p) != v}

    def reported(self, sent: dict[int, InputProgress]) -> None:
        self._reported.update(sent)
