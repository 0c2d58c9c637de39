"""journeys_alerts_total carries the alert's persona, bounded by the configured list (docs/METRICS.md)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.gap_detector.metrics import DetectorMetrics

pytestmark = pytest.mark.unit


def alert(
    kind: str, persona: str | None = None, status: str = "open", severity: str = "high"
) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": kind, "severity": severity, "status": status}
    if persona is not None:
        doc["persona"] = persona
    return doc


def raised(metrics: DetectorMetrics) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["type"], s.labels["severity"], s.labels["persona"]): s.value
        for family in metrics.registry.collect()
        if family.name == "journeys_alerts"
        for s in family.samples
        if s.name == "journeys_alerts_total"
    }


def test_alerts_are_counted_by_type_severity_and_a_bounded_persona() -> None:
    metrics = DetectorMetrics(CollectorRegistry(), personas=("store_loyal", "price_hunter"))
    metrics.count_alerts(
        [
            alert("stall", "store_loyal"),
            alert("stall", "store_loyal"),
            alert("channel_switch", "price_hunter"),
            alert("stall", "someone_new"),  # not in the list: other
            alert("dropoff_spike", severity="critical"),  # no customer, no persona: other
            alert("stall", "store_loyal", status="closed"),  # a retraction is not raised
        ]
    )
    assert raised(metrics) == {
        ("stall", "high", "store_loyal"): 2,
        ("channel_switch", "high", "price_hunter"): 1,
        ("stall", "high", "other"): 1,
        ("dropoff_spike", "critical", "other"): 1,
    }
    assert metrics.registry.get_sample_value("journeys_alerts_retracted_total", {"type": "stall"}) == 1


def test_whatever_personas_the_events_name_the_label_set_stays_the_configured_list() -> None:
    metrics = DetectorMetrics(CollectorRegistry(), personas=("store_loyal",))
    metrics.count_alerts([alert("stall", f"persona_{i}") for i in range(1000)])
    assert {p for _, _, p in raised(metrics)} == {"other"}
