"""The one retry policy: what counts as transient, and logs that do not flood during an outage."""

from __future__ import annotations

import logging

import pytest
import redis.exceptions
from confluent_kafka import KafkaError, KafkaException

from services.common.kafka_loop import DeliveryFailed
from services.common.retry import RateLimitedLog, is_transient, target_of

pytestmark = pytest.mark.unit


def test_targets_of_failures() -> None:
    assert target_of(redis.exceptions.ConnectionError()) == "redis"
    assert target_of(redis.exceptions.BusyLoadingError()) == "redis"
    assert target_of(KafkaException(KafkaError(KafkaError._TRANSPORT))) == "kafka"
    assert target_of(DeliveryFailed(KafkaError(KafkaError._MSG_TIMED_OUT))) == "kafka"
    assert target_of(ConnectionResetError()) == "redis"
    assert target_of(ValueError("a bug")) == "handler"
    assert not is_transient(KeyError("x")) and is_transient(redis.exceptions.TimeoutError())


def test_rate_limited_log_says_how_many_lines_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(logging.getLogger("t"), every_s=3600)
    with caplog.at_level(logging.WARNING):
        for _ in range(1000):
            limited.warn("redis down", ConnectionError("refused"))
        limited.warn("kafka down", ConnectionError("refused"))
    assert [r.getMessage() for r in caplog.records] == [
        "redis down: ConnectionError: refused",
        "kafka down: ConnectionError: refused",
    ]
    limited.every_s = 0
    with caplog.at_level(logging.WARNING):
        limited.warn("redis down", ConnectionError("refused"))
    assert caplog.records[-1].getMessage().endswith("(999 more like it not logged)")
