"""Settings of the journey-map worker (environment variables; see ``journeys map --help``)."""

from __future__ import annotations

from pydantic import field_validator

from services.common.settings import CommonSettings, env
from services.common.timeutil import parse_duration_ms
from services.common.vocabulary import DEFAULT_PERSONAS, PERSONAS_HELP
from services.journey_map.core.bounds import DEFAULT_DEPARTMENTS, DEFAULT_EMOTIONS


class JourneyMapSettings(CommonSettings):
    map_metrics_port: int = env(
        "JOURNEYS_MAP_METRICS_PORT", "Port of the journey-map worker's /metrics.", default=9103
    )
    map_group_id: str = env(
        "JOURNEYS_MAP_GROUP",
        "Kafka consumer group of the journey-map worker (stitched-events, identity-merges, gap-alerts).",
        default="journeys-journey-map",
    )
    definitions: str | None = env(
        "JOURNEYS_DEFINITIONS",
        "Journey definitions file (YAML/JSON); unset: the bundled defaults.",
        default=None,
    )
    map_personas: str = env("JOURNEYS_MAP_PERSONAS", PERSONAS_HELP, default=",".join(DEFAULT_PERSONAS))
    map_departments: str = env(
        "JOURNEYS_MAP_DEPARTMENTS",
        "Departments the journey map keeps apart (comma separated); others: 'other'.",
        default=",".join(DEFAULT_DEPARTMENTS),
    )
    map_emotions: str = env(
        "JOURNEYS_MAP_EMOTIONS",
        "Emotions the journey map keeps apart (comma separated); others: 'other'.",
        default=",".join(DEFAULT_EMOTIONS),
    )
    map_shards: int = env(
        "JOURNEYS_MAP_SHARDS",
        "Customers are spread over this many hash-tagged groups of map keys (one script "
        "per group and batch; on Redis Cluster, groups land on different nodes). Changing "
        "it needs an empty map.",
        default=4,
    )
    map_minute_retention: str = env(
        "JOURNEYS_MAP_MINUTE_RETENTION",
        "Per-minute map counters live this long after their last write.",
        default="3d",
    )
    map_hour_retention: str = env(
        "JOURNEYS_MAP_HOUR_RETENTION",
        "Per-hour map counters live this long after their last write.",
        default="35d",
    )
    map_pain_members: int = env(
        "JOURNEYS_MAP_PAIN_MEMBERS",
        "Most customers listed behind one pain point (journey, stage, alert type).",
        default=500,
    )
    map_batch_size: int = env("JOURNEYS_MAP_BATCH_SIZE", "Most records per batch.", default=1000)

    @field_validator("map_minute_retention", "map_hour_retention")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration_ms(value)
        return value

    @field_validator("map_shards")
    @classmethod
    def _shards(cls, value: int) -> int:
        if not 1 <= value <= 1024:
            raise ValueError("use 1 to 1024")
        return value

    def instance_port(self) -> int | None:
        return self.map_metrics_port

    @staticmethod
    def names(text: str) -> tuple[str, ...]:
        return tuple(p.strip() for p in text.split(",") if p.strip())
