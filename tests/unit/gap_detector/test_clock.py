"""The watermark moves on evidence only: every input partition proven, every detector input seen."""

from __future__ import annotations

import pytest

from services.common.progress import InputProgress as P
from services.gap_detector.core.clock import EVENT, LIVE, expected_inputs, input_candidate, seen_evidence

pytestmark = pytest.mark.unit
LATE, IDLE = 300, 3_000


def test_nothing_is_proven_while_any_input_partition_never_reported() -> None:
    assert input_candidate({0: P(10_000, 9_000, 1)}, 2, LIVE, IDLE, LATE) is None
    assert input_candidate({}, 0, LIVE, IDLE, LATE) is None


def test_live_a_drained_partition_proves_the_wall_time_it_was_drained_to() -> None:
    # Partition 1 has had no events for a day, but it is read up to 50_000: its silence is evidence.
    inputs = {0: P(event_ms=60_000, seen_ms=55_000, grew_ms=54_000), 1: P(0, 50_000, 0)}
    assert input_candidate(inputs, 2, LIVE, IDLE, LATE) == 50_000 - LATE


def test_live_a_backlog_holds_the_watermark_at_what_was_stitched() -> None:
    # The stitcher is behind on partition 1 (never drained since the outage): the wall clock is no
    # evidence there, only the newest event stitched from it is.
    inputs = {0: P(90_000, 90_000, 89_000), 1: P(event_ms=20_000, seen_ms=10_000, grew_ms=89_500)}
    assert input_candidate(inputs, 2, LIVE, IDLE, LATE) == 20_000 - LATE


def test_event_clock_ignores_wall_time_but_lets_quiet_drained_partitions_go() -> None:
    busy = {0: P(event_ms=7_000, seen_ms=100, grew_ms=99), 1: P(event_ms=9_000, seen_ms=100, grew_ms=100)}
    assert input_candidate(busy, 2, EVENT, IDLE, LATE) == 7_000 - LATE
    # Partition 0 drained 3 s (wall) after its newest event: quiet, it no longer holds the others back.
    quiet = {0: P(7_000, seen_ms=3_099, grew_ms=99), 1: P(9_000, seen_ms=100, grew_ms=100)}
    assert input_candidate(quiet, 2, EVENT, IDLE, LATE) == 9_000 - LATE
    # Everything quiet: the newest event time; nothing ever stitched: nothing proven.
    both = {0: P(7_000, 5_000, 99), 1: P(9_000, 5_000, 100)}
    assert input_candidate(both, 2, EVENT, IDLE, LATE) == 9_000 - LATE
    assert input_candidate({0: P(0, 9_000, 0)}, 1, EVENT, IDLE, LATE) is None


def test_seen_evidence_is_the_oldest_over_every_expected_input() -> None:
    expected = expected_inputs({"stitched": 2, "merges": 1})
    assert expected == ["merges:0", "stitched:0", "stitched:1"]
    assert seen_evidence({"merges:0": 5, "stitched:0": 9, "stitched:1": 7}, expected) == 5
    assert seen_evidence({"merges:0": 5, "stitched:0": 9}, expected) is None  # a partition nobody reads
    assert seen_evidence({}, []) is None
