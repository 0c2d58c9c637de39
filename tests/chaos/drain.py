"""Waiting (with a deadline) until the pipeline has drained: both groups committed up to the end of their
input topics, no stall timer due by the wall clock left unfired, and the alert topic quiet for a while."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.common.keys import Keys
from tests.chaos import readback as rb

QUIET_S = 5.0  # the alert topic unchanged this long after everything is committed
LATENESS_MS = 300_000  # the detector's default watermark lateness


@dataclass
class DrainState:
    behind: dict[str, int]  # what is not done yet: "<group> <topic>" -> records behind, "timers due" -> n
    alerts_end: int
    partitions: dict[str, dict[int, int]] | None = None  # "<group> <topic>" -> partition -> records behind

    @property
    def done(self) -> bool:
        return not any(self.behind.values())


def measure(bootstrap: str, redis_client: Any, prefix: str, topic: Callable[[str], str]) -> DrainState:
    behind: dict[str, int] = {}
    partitions: dict[str, dict[int, int]] = {}
    for group, names in (
        (rb.STITCHER_GROUP, ("channel-events",)),
        (rb.DETECTOR_GROUP, ("stitched-events", "identity-merges")),
    ):
        for name in names:
            t = topic(name)
            end = rb.ends(bootstrap, t)
            done = rb.committed(bootstrap, group, t, sorted(end))
            lag = {p: max(0, e - done.get(p, 0)) for p, e in end.items()}
            behind[f"{group} {name}"] = sum(lag.values())
            partitions[f"{group} {name}"] = {p: n for p, n in lag.items() if n}
    keys = Keys(prefix)
    due = int(time.time() * 1000) - LATENESS_MS
    behind["stall timers due"] = int(redis_client.zcount(keys.timers, "-inf", due))
    behind["stall timers in flight"] = int(redis_client.zcard(keys.timers_inflight))
    alerts_end = sum(rb.ends(bootstrap, topic("gap-alerts")).values())
    return DrainState(behind, alerts_end, partitions)


class DrainWatch:
    """``check()`` is true once the state is drained and the alert count has not moved for QUIET_S."""

    def __init__(self, measure_now: Callable[[], DrainState], on_tick: Callable[[], None]) -> None:
        self.measure_now, self.on_tick = measure_now, on_tick
        self.last: DrainState | None = None
        self.quiet_since: float | None = None

    def check(self) -> bool:
        self.on_tick()
        try:
            state = self.measure_now()
        except Exception as exc:  # the broker or Redis may still be coming back: not drained yet
            self.last, self.quiet_since = DrainState({f"unreadable: {exc}": 1}, -1), None
            return False
        if not state.done:
            self.quiet_since = None
        elif self.last is None or not self.last.done or self.last.alerts_end != state.alerts_end:
            self.quiet_since = time.monotonic()
        self.last = state
        return self.quiet_since is not None and time.monotonic() - self.quiet_since >= QUIET_S
