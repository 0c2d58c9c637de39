"""Where the fixtures take Kafka and Redis from (tests/infra.py)."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from tests.infra import _containers, docker_engine_answers, provide_infra

pytestmark = pytest.mark.integration


def test_given_endpoints_are_used_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")
    monkeypatch.setenv("REDIS_URL", "redis://redis.example:6379/3")
    with provide_infra() as infra:
        assert (infra.bootstrap_servers, infra.redis_url) == (
            "kafka.example:9092",
            "redis://redis.example:6379/3",
        )


def test_failing_containers_fall_back_without_leaving_anything_behind() -> None:
    if docker_engine_answers():
        pytest.skip("a Docker engine answers here: containers would start")
    with ExitStack() as stack, pytest.warns(UserWarning, match="using the local stack instead"):
        assert _containers(stack, None, None) is None
