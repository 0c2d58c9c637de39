"""The journey-map worker's Prometheus metrics (docs/METRICS.md names; no customer or persona labels)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from services.common.loop_metrics import LoopMetrics

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class MapMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.records = Counter(
            "journeys_map_records_total", "Records the journey map applied, by kind.", ["kind"], registry=r
        )
        self.skipped = Counter(
            "journeys_map_records_skipped_total",
            "Records the journey map could not use (the detector dead-letters bad ones).",
            ["reason"],
            registry=r,
        )
        for reason in ("unusable_alert", "malformed_json"):  # the worker's own: series at 0, panels not empty
            self.skipped.labels(reason)
        self.conflicts = Counter(
            "journeys_map_conflicts_total",
            "Batches planned again: a customer's map state changed meanwhile.",
            registry=r,
        )
        self.batch = Histogram(
            "journeys_map_batch_seconds", "Time to apply one batch to the map.", buckets=BUCKETS, registry=r
        )
        self.loop = LoopMetrics.register(r)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
