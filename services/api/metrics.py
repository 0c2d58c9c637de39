"""The API's Prometheus metrics (names fixed in docs/METRICS.md), on a registry per app.

A registry per app (not the global one) lets tests and benchmarks build several apps in one process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

# Sub-millisecond buckets: the lookup target is p99 < 5 ms.
LOOKUP_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@dataclass
class ApiMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.lookup_latency = Histogram(
            "journeys_lookup_latency_seconds",
            "Time to resolve and read one journey, by lookup kind.",
            ["by"],
            buckets=LOOKUP_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "journeys_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.erasures = Counter("journeys_erasures_total", "Customers erased.", registry=r)
        self.retries = Counter(
            "journeys_retries_total", "Retried calls to a dependency.", ["target"], registry=r
        )
        # Pre-create the bounded label sets so dashboards and rules see the series from the start.
        self.retries.labels(target="redis")
