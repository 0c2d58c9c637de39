"""The demo's counters and view, fed with records as they come off the output topics."""

from __future__ import annotations

import orjson
import pytest
from rich.console import Console

from services.simulator.live_view import LiveStats, render, summary_line

pytestmark = pytest.mark.unit


def _feed(stats: LiveStats) -> None:
    stats.on_record(
        "stitched", orjson.dumps({"customer_id": "c_1", "journey": {"type": "purchase", "stage": "cart"}})
    )
    stats.on_record("stitched", orjson.dumps({"customer_id": "c_2"}))
    stats.on_record(
        "stitched", orjson.dumps({"customer_id": "c_1", "journey": {"type": "purchase", "stage": "cart"}})
    )
    stats.on_record("merges", orjson.dumps({"kind": "merge"}))
    stats.on_record("merges", orjson.dumps({"kind": "conflict"}))
    stats.on_record(
        "alerts", orjson.dumps({"type": "stall", "severity": "high", "title": "Purchase stuck at cart"})
    )
    stats.on_record("alerts", b"{not json")  # a stranger on the topic must not break the view


def test_counters_follow_the_topics() -> None:
    stats = LiveStats(total=10)
    _feed(stats)
    assert (stats.stitched, len(stats.customers), stats.merges, stats.conflicts) == (3, 2, 1, 1)
    assert stats.journeys["purchase/cart"] == 2 and stats.alerts == {"stall": 1}
    assert stats.people == 1  # c_1 and c_2 merged
    assert summary_line(stats) == "sent 0/10, stitched 3, customers 1, merges 1, alerts: stall 1"


def test_the_view_shows_alerts_and_urls() -> None:
    stats = LiveStats(total=10)
    _feed(stats)
    console = Console(width=140, record=True, force_terminal=False)
    console.print(render(stats, [("agent page", "http://127.0.0.1:8088/agent")], "Ctrl-C stops"))
    text = console.export_text()
    assert "Purchase stuck at cart" in text and "http://127.0.0.1:8088/agent" in text and "merges 1" in text
