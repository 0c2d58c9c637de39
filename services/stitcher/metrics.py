"""The stitcher's Prometheus metrics (names and labels per docs/METRICS.md), in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from services.common.loop_metrics import LoopMetrics

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class StitcherMetrics:
    """Touched once per batch, never per event: a labelled child lookup costs about what decoding an
    event does."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_in = Counter(
            "journeys_events_in_total", "Channel events consumed.", ["channel"], registry=r
        )
        self.invalid = Counter(
            "journeys_events_invalid_total", "Channel events rejected as bad input.", ["reason"], registry=r
        )
        self.dead_lettered = Counter(
            "journeys_events_dead_lettered_total", "Channel events sent to the DLQ.", ["reason"], registry=r
        )
        self.stitched = Counter(
            "journeys_events_stitched_total", "Events stitched to a customer.", registry=r
        )
        self.written = Counter(
            "journeys_touchpoints_written_total", "Touchpoints added to journeys.", registry=r
        )
        self.duplicates = Counter(
            "journeys_duplicates_total", "Redelivered events that changed nothing.", registry=r
        )
        self.merges = Counter("journeys_merges_total", "Customers merged into another.", registry=r)
        self.conflicts = Counter(
            "journeys_merge_conflicts_total", "Merges or links refused by a limit.", ["id_type"], registry=r
        )
        self.e2e = Histogram(
            "journeys_end_to_end_latency_seconds",
            "Kafka timestamp of the channel event to this step.",
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

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
