"""What the processor is handed besides records: the evidence of a tick, the sink its output goes to, and
a batch's merges chained (pure helpers, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from services.common.kafka_loop import Record

__all__ = ["Evidence", "Sink", "chained"]


def chained(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Merges of one batch, each survivor replaced by where the batch's later merges take it (C <- D after
    D <- E folds E into C, not into a D that nobody reads any more); a merge that would close a cycle is
    moot (its loser already is where it would go)."""
    into: dict[str, str] = {}

    def end(cid: str) -> str:
        seen = {cid}
        while cid in into and into[cid] not in seen:
            cid = into[cid]
            seen.add(cid)
        return cid

    for survivor, loser in pairs:
        if loser != survivor and end(survivor) != loser:
            into[loser] = survivor
    return [(end(s), loser) for s, loser in pairs if end(s) != loser]


@dataclass(frozen=True, slots=True)
class Evidence:
    """What this worker knows on a tick: its own seen-through times ('<topic>:<partition>' -> ms) and
    every partition of its input topics (empty: not known yet, so nothing is proven)."""

    own_seen: dict[str, int] = field(default_factory=dict)
    expected: list[str] = field(default_factory=list)


class Sink(Protocol):
    """Where the processor's output goes (the worker: the Kafka loop's outbox; tests: a list)."""

    async def publish(self, alerts: list[dict[str, Any]], docs: list[bytes]) -> None:
        """Produce alerts (``docs``: each one's JSON); when it returns the broker has acknowledged them."""

    def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        """Queue a record that cannot be used; delivered before its batch is committed."""
