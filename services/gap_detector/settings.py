"""Settings of the gap detector worker (environment variables; see ``journeys detector --help``)."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from services.common.settings import CommonSettings, env
from services.common.timeutil import parse_duration_ms
from services.common.vocabulary import DEFAULT_PERSONAS, PERSONAS_HELP


class GapDetectorSettings(CommonSettings):
    metrics_port: int = env(
        "JOURNEYS_DETECTOR_METRICS_PORT", "Port of the detector's Prometheus /metrics.", default=9102
    )
    group_id: str = env(
        "JOURNEYS_DETECTOR_GROUP",
        "Kafka consumer group of the gap detector (stitched-events and identity-merges).",
        default="journeys-gap-detector",
    )
    definitions: str | None = env(
        "JOURNEYS_DEFINITIONS",
        "Journey definitions file (YAML/JSON); unset: the bundled defaults.",
        default=None,
    )
    timer_clock: Literal["event", "live"] = env(
        "JOURNEYS_TIMER_CLOCK",
        "What drives stall timers: live (a drained input proves the wall clock) or event (event times only; "
        "replays). Either way only proven input moves the watermark (docs/RULES.md).",
        default="live",
    )
    watermark_lateness: str = env(
        "JOURNEYS_WATERMARK_LATENESS",
        "The watermark trails the newest event time by this much.",
        default="5m",
    )
    watermark_idle: str = env(
        "JOURNEYS_WATERMARK_IDLE",
        "Event clock: an input partition drained this long (wall clock) after its "
        "newest event stops holding the watermark back.",
        default="3s",
    )
    open_alert_ttl: str = env(
        "JOURNEYS_OPEN_ALERT_TTL",
        "Open alerts expire from a customer's open set after this long.",
        default="7d",
    )
    recent_alerts: int = env(
        "JOURNEYS_RECENT_ALERTS", "How many recent alerts Redis keeps for the API.", default=10_000
    )
    buffer_events: int = env(
        "JOURNEYS_DETECTOR_BUFFER_EVENTS",
        "Most recent events kept per customer to judge late arrivals by event time.",
        default=200,
    )
    state_cache: int = env(
        "JOURNEYS_DETECTOR_STATE_CACHE",
        "Customers whose decoded state a worker keeps between batches (0: none), about "
        "10 KiB each; a kept state is not read or decoded again while Redis holds it.",
        default=10_000,
    )
    batch_size: int = env("JOURNEYS_DETECTOR_BATCH_SIZE", "Most events per Redis round trip.", default=1000)
    batch_window: str = env("JOURNEYS_DETECTOR_BATCH_WINDOW", "Longest wait to fill a batch.", default="10ms")
    tick: str = env("JOURNEYS_DETECTOR_TICK", "How often due stall timers are claimed.", default="250ms")
    timers_per_tick: int = env(
        "JOURNEYS_DETECTOR_TIMERS_PER_TICK", "Most timers one claim takes.", default=2000
    )
    webhook_url: str | None = env(
        "JOURNEYS_ALERT_WEBHOOK_URL", "Webhook for dropoff_spike alerts (unset: none).", default=None
    )
    webhook_format: Literal["alertmanager", "slack"] = env(
        "JOURNEYS_ALERT_WEBHOOK_FORMAT",
        "Webhook body: alertmanager (list of alerts) or slack ({text}).",
        default="alertmanager",
    )
    webhook_queue: int = env(
        "JOURNEYS_ALERT_WEBHOOK_QUEUE",
        "Most webhook deliveries waiting; more are dropped and counted.",
        default=1000,
    )
    webhook_retries: int = env("JOURNEYS_ALERT_WEBHOOK_RETRIES", "Attempts per webhook delivery.", default=5)
    # The journey map's list, so an alert's persona label and the map's persona columns agree.
    personas: str = env("JOURNEYS_MAP_PERSONAS", PERSONAS_HELP, default=",".join(DEFAULT_PERSONAS))

    @field_validator("watermark_lateness", "watermark_idle", "open_alert_ttl", "batch_window", "tick")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration_ms(value)
        return value

    def instance_port(self) -> int | None:
        return self.metrics_port

    @property
    def persona_names(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.personas.split(",") if p.strip())

    @property
    def lateness_ms(self) -> int:
        return parse_duration_ms(self.watermark_lateness)

    @property
    def watermark_idle_ms(self) -> int:
        return parse_duration_ms(self.watermark_idle)

    @property
    def open_alert_ttl_ms(self) -> int:
        return parse_duration_ms(self.open_alert_ttl)

    @property
    def batch_window_s(self) -> float:
        return parse_duration_ms(self.batch_window) / 1000

    @property
    def tick_s(self) -> float:
        return parse_duration_ms(self.tick) / 1000
