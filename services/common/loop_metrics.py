"""The Kafka loop's metric series (lag, retries), created by each service in its own registry.

``services.common.kafka_loop.KafkaLoop`` sets them; docs/METRICS.md names them.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True, slots=True)
class LoopMetrics:
    """The loop's series, created by the service in its own registry (names in docs/METRICS.md)."""

    lag: Gauge  # journeys_consumer_lag_messages{topic}: high watermark - committed offset
    retries: Counter  # journeys_retries_total{target}

    @classmethod
    def register(cls, registry: CollectorRegistry) -> LoopMetrics:
        """The two series, as docs/METRICS.md names them, in a service's registry."""
        return cls(
            Gauge(
                "journeys_consumer_lag_messages",
                "High watermark minus the committed offset.",
                ["topic"],
                registry=registry,
            ),
            Counter(
                "journeys_retries_total", "Failed batches (or calls) retried.", ["target"], registry=registry
            ),
        )
