"""A stitcher's evidence about its input: only committed batches count, values only move forward."""

from __future__ import annotations

import pytest

from services.common.progress import InputProgress, ProgressTracker

pytestmark = pytest.mark.unit


def test_handled_events_are_evidence_only_once_committed() -> None:
    t = ProgressTracker()
    t.observe(0, 1_000)
    t.observe(0, 900)  # an older one of the same batch does not lower it
    assert t.unreported({}) == {}
    t.committed([1], now_ms=50)  # another partition's commit proves nothing about partition 0
    assert t.unreported({}) == {}
    t.committed([0], now_ms=60)
    assert t.unreported({}) == {0: InputProgress(1_000, 0, 60)}


def test_seen_through_times_join_and_only_changes_are_reported_again() -> None:
    t = ProgressTracker()
    t.observe(2, 5_000)
    t.committed([2], now_ms=10)
    first = t.unreported({2: 20, 3: 30})
    assert first == {2: InputProgress(5_000, 20, 10), 3: InputProgress(0, 30, 0)}
    assert t.unreported({2: 20, 3: 30}) == first  # not sent yet (a failed write is sent again)
    t.reported(first)
    assert t.unreported({2: 20, 3: 30}) == {}
    assert t.unreported({2: 15, 3: 40}) == {3: InputProgress(0, 40, 0)}  # seen never moves back


def test_merge_keeps_the_newest_event_with_its_grew_time_and_the_larger_seen() -> None:
    old = InputProgress(event_ms=100, seen_ms=50, grew_ms=10)
    late = InputProgress(event_ms=90, seen_ms=70, grew_ms=60)  # a new owner re-stitching older records
    assert old.merge(late) == InputProgress(100, 70, 10)
    assert late.merge(InputProgress(120, 0, 80)) == InputProgress(120, 70, 80)
    assert InputProgress.parse(old.encode()) == old
    assert InputProgress.parse(b"-5:0:0") == InputProgress(-5, 0, 0)
