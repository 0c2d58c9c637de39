"""The fault plan of a chaos run: what happens when, drawn from a seed (pure; the executor is faults.py).

Like Kafka's StreamsEosTest, the faults land at random moments while input flows: SIGKILLs of stitcher and
detector workers (each restarted after a short pause, as a supervisor would), broker and Redis bounces
(stopped, kept down a while, started again with their data), and a second stitcher and a second detector
that join for a while and leave again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

KILL_STITCHER, KILL_DETECTOR = "kill_stitcher", "kill_detector"
BOUNCE_KAFKA, BOUNCE_REDIS = "bounce_kafka", "bounce_redis"
ADD_STITCHER, REMOVE_STITCHER = "add_stitcher", "remove_stitcher"
ADD_DETECTOR, REMOVE_DETECTOR = "add_detector", "remove_detector"
MIN_GAP_S = 2.0  # between two faults, so each one's effect can be told apart in the logs


@dataclass(frozen=True)
class Fault:
    at_s: float  # seconds after the replay started
    kind: str
    pause_s: float = 0.0  # how long the victim stays down (kills: before the restart; bounces: outage)

    def describe(self) -> str:
        down = f", down {self.pause_s:.1f} s" if self.pause_s else ""
        return f"{self.at_s:6.1f} s {self.kind}{down}"


@dataclass(frozen=True)
class Intensity:
    """How many faults of each kind per run (the short CI run) or per minute (the long run)."""

    kills_per_role: int
    bounces_kafka: int
    bounces_redis: int
    kafka_down_s: tuple[float, float] = (5.0, 15.0)
    redis_down_s: tuple[float, float] = (2.0, 8.0)
    restart_after_s: tuple[float, float] = (0.5, 4.0)


def intensity_for(minutes: float) -> Intensity:
    """The short run (< 5 min): two kills of each role, one bounce of each server; a longer run: a kill of
    each role every 40 s, a broker bounce every 4 min and a Redis bounce every 3 min (at least one each)."""
    if minutes < 5:
        return Intensity(kills_per_role=2, bounces_kafka=1, bounces_redis=1)
    return Intensity(
        kills_per_role=max(2, round(minutes * 1.5)),
        bounces_kafka=max(1, round(minutes / 4)),
        bounces_redis=max(1, round(minutes / 3)),
        kafka_down_s=(5.0, 32.0),
    )


def plan(seed: int, duration_s: float, intensity: Intensity) -> list[Fault]:
    """Faults within the first 85 % of ``duration_s`` (the replay keeps flowing after the last one), sorted
    by time, at least MIN_GAP_S apart. The second stitcher joins in the first half and leaves in the second;
    the second detector likewise, at other moments."""
    rng = random.Random(seed)
    horizon = duration_s * 0.85
    faults: list[Fault] = []

    def draw(lo: float, hi: float) -> float:
        for _ in range(200):
            t = rng.uniform(lo, hi)
            if all(abs(t - f.at_s) >= MIN_GAP_S for f in faults):
                return round(t, 1)
        return round(rng.uniform(lo, hi), 1)  # crowded (a very short run): overlap rather than skip

    for add, remove in ((ADD_STITCHER, REMOVE_STITCHER), (ADD_DETECTOR, REMOVE_DETECTOR)):
        faults.append(Fault(draw(0.05 * horizon, 0.45 * horizon), add))
        faults.append(Fault(draw(0.55 * horizon, horizon), remove))
    for kind in (KILL_STITCHER, KILL_DETECTOR):
        for _ in range(intensity.kills_per_role):
            pause = round(rng.uniform(*intensity.restart_after_s), 1)
            faults.append(Fault(draw(0.02 * horizon, horizon), kind, pause))
    for kind, n, down in (
        (BOUNCE_KAFKA, intensity.bounces_kafka, intensity.kafka_down_s),
        (BOUNCE_REDIS, intensity.bounces_redis, intensity.redis_down_s),
    ):
        for _ in range(n):
            faults.append(Fault(draw(0.1 * horizon, horizon), kind, round(rng.uniform(*down), 1)))
    return sorted(faults, key=lambda f: f.at_s)
