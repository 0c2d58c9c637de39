"""Settings of the stitcher worker (environment variables; see ``journeys stitcher --help``)."""

from __future__ import annotations

from functools import cached_property

from pydantic import field_validator

from services.common.settings import CommonSettings, env
from services.common.timeutil import parse_duration_ms
from services.stitcher.core.identifiers import IDENTIFIER_TYPES

DEFAULT_LIMITS = (
    "customer_id=1,account_id=2,email=5,phone=5,device_id=20,cookie_id=20,loyalty_id=2,social_handle=5"
)


def parse_limits(text: str) -> dict[str, int]:
    """``type=n,…`` -> {type: n}; every identifier type gets a limit (unlisted types keep the default)."""
    limits = dict(_pairs(DEFAULT_LIMITS))
    limits.update(_pairs(text))
    return limits


def _pairs(text: str) -> list[tuple[str, int]]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, num = part.partition("=")
        name = name.strip()
        if not sep or name not in IDENTIFIER_TYPES or not num.strip().isdigit() or int(num) < 1:
            raise ValueError(f"bad merge limit {part!r}: use <identifier type>=<n >= 1>, e.g. email=5")
        out.append((name, int(num)))
    return out


class StitcherSettings(CommonSettings):
    metrics_port: int = env(
        "JOURNEYS_STITCHER_METRICS_PORT", "Port of the stitcher's Prometheus /metrics.", default=9101
    )
    group_id: str = env(
        "JOURNEYS_STITCHER_GROUP", "Kafka consumer group of the stitcher.", default="journeys-stitcher"
    )
    max_future_skew: str = env(
        "JOURNEYS_MAX_FUTURE_SKEW",
        "Events further in the future than this are dead-lettered (bad_timestamp).",
        default="5m",
    )
    max_event_age: str = env(
        "JOURNEYS_MAX_EVENT_AGE", "Events older than this are dead-lettered (bad_timestamp).", default="365d"
    )
    max_event_bytes: int = env(
        "JOURNEYS_MAX_EVENT_BYTES", "Larger channel events are dead-lettered (oversized).", default=65536
    )
    max_touchpoints: int = env(
        "JOURNEYS_MAX_TOUCHPOINTS",
        "Most touchpoints kept per customer journey (oldest by event time dropped).",
        default=1000,
    )
    merge_limits: str = env(
        "JOURNEYS_MERGE_LIMITS",
        "Per-type identifier limits per customer; a merge breaking one is refused.",
        default=DEFAULT_LIMITS,
    )
    junk_identifiers: str = env(
        "JOURNEYS_JUNK_IDENTIFIERS",
        "Extra junk identifier values (comma separated), never stitched on.",
        default="",
    )
    batch_size: int = env("JOURNEYS_STITCHER_BATCH_SIZE", "Most events per Redis script call.", default=1000)
    batch_window: str = env("JOURNEYS_STITCHER_BATCH_WINDOW", "Longest wait to fill a batch.", default="10ms")
    identifier_cache: int = env(
        "JOURNEYS_IDENTIFIER_CACHE",
        "In-process cache entries of normalised+hashed identifiers.",
        default=500_000,
    )

    @field_validator("max_future_skew", "max_event_age", "batch_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration_ms(value)
        return value

    @field_validator("merge_limits")
    @classmethod
    def _limits(cls, value: str) -> str:
        parse_limits(value)
        return value

    def instance_port(self) -> int | None:
        return self.metrics_port

    @cached_property
    def limits(self) -> dict[str, int]:
        return parse_limits(self.merge_limits)

    @property
    def max_future_skew_ms(self) -> int:
        return parse_duration_ms(self.max_future_skew)

    @property
    def max_event_age_ms(self) -> int:
        return parse_duration_ms(self.max_event_age)

    @property
    def batch_window_s(self) -> float:
        return parse_duration_ms(self.batch_window) / 1000
