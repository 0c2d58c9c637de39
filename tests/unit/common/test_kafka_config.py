"""Consumer configuration for fast recovery: static membership, a short session, cooperative rebalancing."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from services.common.kafka_config import consumer_config
from services.common.settings import CommonSettings
from services.gap_detector.settings import GapDetectorSettings
from services.stitcher.settings import StitcherSettings

pytestmark = pytest.mark.unit


def test_a_short_session_frequent_heartbeats_and_cooperative_rebalancing_by_default() -> None:
    config = consumer_config(CommonSettings.model_validate({}), "g")
    assert config["session.timeout.ms"] == 10_000 and config["heartbeat.interval.ms"] == 1000
    assert config["partition.assignment.strategy"] == "cooperative-sticky"
    assert config["enable.auto.commit"] is False


def test_the_setting_decides_the_session() -> None:
    settings = CommonSettings.model_validate({"JOURNEYS_KAFKA_SESSION_TIMEOUT": "6s"})
    config = consumer_config(settings, "g")
    assert config["session.timeout.ms"] == 6000 and config["heartbeat.interval.ms"] == 1000


def test_a_worker_is_a_static_member_named_after_its_host_and_metrics_port() -> None:
    stitcher = StitcherSettings.model_validate({"JOURNEYS_STITCHER_METRICS_PORT": "9111"})
    detector = GapDetectorSettings.model_validate({"JOURNEYS_DETECTOR_METRICS_PORT": "9112"})
    assert consumer_config(stitcher, "g")["group.instance.id"].endswith("-9111")
    assert consumer_config(detector, "g")["group.instance.id"].endswith("-9112")
    # Stable across restarts (same host, same port), different for a second worker on the host.
    again = StitcherSettings.model_validate({"JOURNEYS_STITCHER_METRICS_PORT": "9111"})
    other = StitcherSettings.model_validate({"JOURNEYS_STITCHER_METRICS_PORT": "9113"})
    assert again.group_instance_id() == stitcher.group_instance_id() != other.group_instance_id()
    assert str(stitcher.group_instance_id()).startswith(socket.gethostname()[:1])


def test_an_explicit_name_wins_and_none_means_a_dynamic_member() -> None:
    named = StitcherSettings.model_validate({"JOURNEYS_INSTANCE_ID": "stitcher-2"})
    assert consumer_config(named, "g")["group.instance.id"] == "stitcher-2"
    dynamic = StitcherSettings.model_validate({"JOURNEYS_INSTANCE_ID": "none"})
    assert "group.instance.id" not in consumer_config(dynamic, "g")
    # Without a metrics port (a plain loop, a tool) nothing names the worker: dynamic.
    assert "group.instance.id" not in consumer_config(CommonSettings.model_validate({}), "g")


def test_a_name_kafka_would_refuse_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="A-Z a-z 0-9"):
        StitcherSettings.model_validate({"JOURNEYS_INSTANCE_ID": "my worker/1"})


def test_retention_is_one_setting_for_both_workers() -> None:
    env = {"JOURNEYS_RETENTION": "30d"}
    stitcher, detector = StitcherSettings.model_validate(env), GapDetectorSettings.model_validate(env)
    assert stitcher.retention_ms == detector.retention_ms == 30 * 86_400_000
    assert CommonSettings.model_validate(env).retention_ms == 30 * 86_400_000
