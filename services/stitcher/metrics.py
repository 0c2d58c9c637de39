"""The stitcher's Prometheus metrics (names and labels per docs/METRICS.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5,
                   1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)

EVENTS_IN = Counter("journeys_events_in_total", "Channel events consumed.", ["channel"])
EVENTS_INVALID = Counter("journeys_events_invalid_total", "Channel events rejected as bad input.", ["reason"])
DEAD_LETTERED = Counter("journeys_events_dead_lettered_total", "Channel events sent to the DLQ.", ["reason"])
STITCHED = Counter("journeys_events_stitched_total", "Events stitched to a customer.")
TOUCHPOINTS_WRITTEN = Counter("journeys_touchpoints_written_total", "Touchpoints added to journeys.")
DUPLICATES = Counter("journeys_duplicates_total", "Redelivered events that changed nothing.")
MERGES = Counter("journeys_merges_total", "Customers merged into another.")
CONFLICTS = Counter("journeys_merge_conflicts_total", "Merges or links refused by a limit.", ["id_type"])
E2E_LATENCY = Histogram("journeys_end_to_end_latency_seconds",
                        "Kafka timestamp of the channel event to this step.", ["step"],
                        buckets=LATENCY_BUCKETS)
STAGE_LATENCY = Histogram("journeys_stage_latency_seconds", "Time a batch spends in a stage.", ["stage"],
                          buckets=LATENCY_BUCKETS)
BATCH_SIZE = Histogram("journeys_batch_size", "Events per batch.", ["stage"], buckets=BATCH_BUCKETS)
RETRIES = Counter("journeys_retries_total", "Transient faults retried.", ["target"])
CONSUMER_LAG = Gauge("journeys_consumer_lag_messages", "Messages not yet consumed.", ["topic"])
