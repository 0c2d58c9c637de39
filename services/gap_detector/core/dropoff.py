"""dropoff_spike: per (journey, stage, channel) and event-time minute, drop-off rate against the rolling
baseline of the previous minutes of the same cell key (RULES.md). Counting happens in Redis (cells are
shared by all workers); this module only names cells and judges them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.gap_detector.core.alerts import MINUTE_MS, dropoff_alert
from services.gap_detector.core.definitions import Definitions

BASELINE_FLOOR = 0.01


def minute_of(t_ms: int) -> int:
    return t_ms - t_ms % MINUTE_MS


def cell_key(journey: str, stage: str, channel: str) -> str:
    return f"{journey}|{stage}|{channel}"


def split_cell(key: str) -> tuple[str, str, str]:
    journey, stage, channel = key.split("|", 2)
    return journey, stage, channel


@dataclass(frozen=True, slots=True)
class Judgement:
    journey: str
    stage: str
    channel: str
    minute: int
    volume: int
    rate: float
    baseline: float
    alert: dict[str, Any] | None


def judge(
    key: str,
    minute: int,
    volume: int,
    dropoffs: int,
    history: Sequence[tuple[int, int]],
    defs: Definitions,
    now_ms: int,
) -> Judgement:
    """Rate of one cell-minute against ``history`` = (volume, drop-offs) of the previous minutes."""
    journey, stage, channel = split_cell(key)
    th = defs.thresholds(journey)
    rate = dropoffs / volume if volume else 0.0
    hist_volume = sum(v for v, _ in history)
    baseline = sum(d for _, d in history) / hist_volume if hist_volume else 0.0
    alert = None
    if volume >= th.dropoff_min_volume and rate > th.dropoff_factor * max(baseline, BASELINE_FLOOR):
        severity = "critical" if rate > 2 * th.dropoff_factor * baseline else "high"
        alert = dropoff_alert(
            journey, stage, channel, minute, rate, baseline, th.dropoff_factor, volume, severity, now_ms
        )
    return Judgement(journey, stage, channel, minute, volume, rate, baseline, alert)
