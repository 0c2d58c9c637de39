"""Repeated warnings and librdkafka lines are limited per distinct message (an outage wrote thousands)."""

from __future__ import annotations

import logging

import pytest

from services.common.logs import RepeatLimiter

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_storm_of_one_error_is_one_line_per_interval_and_counts_the_rest() -> None:
    clock = Clock()
    limiter = RepeatLimiter(20.0, clock)
    passed = []
    for i in range(3000):  # 30 s of a broker outage at 100 lines/s, the numbers in each line differ
        clock.now = i / 100
        r = record(
            "librdkafka", logging.ERROR, "FAIL [thrd:127.0.0.1:%d]: Connect failed (after %dms)", 39092, i
        )
        if limiter.filter(r):
            passed.append(r.getMessage())
    assert len(passed) == 2  # at 0 s and 20 s
    assert passed[1].endswith("(1999 more like it in the last 20 s)")


def test_distinct_errors_each_get_their_line() -> None:
    limiter = RepeatLimiter(20.0, Clock())
    assert limiter.filter(record("x", logging.WARNING, "redis down"))
    assert limiter.filter(record("x", logging.WARNING, "kafka down"))
    assert limiter.filter(record("y", logging.WARNING, "redis down"))
    assert not limiter.filter(record("x", logging.WARNING, "redis down"))


def test_info_lines_of_our_own_are_never_held_back() -> None:
    limiter = RepeatLimiter(20.0, Clock())
    assert all(limiter.filter(record("services.x", logging.INFO, "assigned [p0]")) for _ in range(10))
    assert limiter.filter(record("librdkafka", logging.INFO, "rebalance"))
    assert not limiter.filter(record("librdkafka", logging.INFO, "rebalance"))


def test_a_line_marked_keep_is_never_held_back() -> None:
    limiter = RepeatLimiter(20.0, Clock())
    for _ in range(3):
        r = record("journeys.supervisor", logging.WARNING, "stitcher: pid 1 exited; restart 2")
        r.keep = True
        assert limiter.filter(r)
