"""The gap detector's Prometheus metrics (names and labels from docs/METRICS.md)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from services.common.loop_metrics import LoopMetrics
from services.common.vocabulary import DEFAULT_PERSONAS, persona_label

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class DetectorMetrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, personas: Iterable[str] = DEFAULT_PERSONAS
    ) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # persona: bounded by the configured list (JOURNEYS_MAP_PERSONAS), any other or none is 'other', so
        # the series are at most types x severities x (personas + 1) whatever the events say.
        self.personas = frozenset(personas)
        self.alerts = Counter(
            "journeys_alerts_total", "Gap alerts raised.", ["type", "severity", "persona"], registry=r
        )
        self.retracted = Counter(
            "journeys_alerts_retracted_total",
            "Alerts re-published closed: a late event showed they were untrue.",
            ["type"],
            registry=r,
        )
        self.resent = Counter(
            "journeys_alerts_resent_total",
            "Alerts published again because a worker died between publishing them and "
            "saving them (the only duplicates on gap-alerts).",
            registry=r,
        )
        self.pending_timers = Gauge("journeys_pending_timers", "Stall timers armed in Redis.", registry=r)
        self.fire_delay = Histogram(
            "journeys_timer_fire_delay_seconds",
            "Stall deadline to firing, by the watermark clock.",
            buckets=DELAY_BUCKETS,
            registry=r,
        )
        self.watermark_lag = Gauge(
            "journeys_watermark_lag_seconds", "Wall clock minus the watermark.", registry=r
        )
        self.dropoff_rate = Gauge(
            "journeys_dropoff_rate",
            "Drop-off rate of the last judged minute.",
            ["journey", "stage", "channel"],
            registry=r,
        )
        self.dropoff_baseline = Gauge(
            "journeys_dropoff_baseline",
            "Rolling drop-off baseline.",
            ["journey", "stage", "channel"],
            registry=r,
        )
        self.webhook = Counter(
            "journeys_webhook_deliveries_total",
            "Webhook deliveries for dropoff_spike.",
            ["outcome"],
            registry=r,
        )
        for outcome in ("ok", "retry", "dropped"):  # series exist at 0, so rates and panels are not empty
            self.webhook.labels(outcome)
        self.e2e = Histogram(
            "journeys_end_to_end_latency_seconds",
            "Kafka record timestamp of the incoming event to this step.",
            ["step"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "journeys_stage_latency_seconds",
            "Time a batch spends in a stage.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "journeys_batch_size", "Events per batch.", ["stage"], buckets=BATCH_BUCKETS, registry=r
        )
        self.loop = LoopMetrics.register(r)  # journeys_consumer_lag_messages, journeys_retries_total
        self.dead_lettered = Counter(
            "journeys_events_dead_lettered_total",
            "Unusable stitched events / merge records dead-lettered.",
            ["reason"],
            registry=r,
        )

    def count_alerts(self, alerts: Iterable[dict[str, Any]]) -> None:
        """Published alerts: opened ones count as raised, closed ones (retractions) as retracted."""
        opened: Tally[tuple[str, str, str]] = Tally()
        retracted: Tally[str] = Tally()
        for a in alerts:
            if a["status"] == "open":
                opened[(a["type"], a["severity"], persona_label(a.get("persona"), self.personas))] += 1
            elif a["status"] == "closed":
                retracted[a["type"]] += 1
        for (kind, severity, persona), n in opened.items():
            self.alerts.labels(kind, severity, persona).inc(n)
        for kind, n in retracted.items():
            self.retracted.labels(kind).inc(n)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
