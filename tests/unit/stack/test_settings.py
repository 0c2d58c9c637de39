from __future__ import annotations

from pathlib import Path

import pytest

from services.stack.settings import KAFKA_VERSION, PROJECT_ROOT, StackSettings

pytestmark = pytest.mark.unit


def make(monkeypatch: pytest.MonkeyPatch, **env: str) -> StackSettings:
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "REDIS_URL",
        "JOURNEYS_STATE_DIR",
        "JOURNEYS_CACHE_DIR",
        "XDG_CACHE_HOME",
        "JOURNEYS_API_HOST",
        "JOURNEYS_BIND_HOST",
        "JOURNEYS_API_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return StackSettings()


def test_defaults_are_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    s = make(monkeypatch)
    assert (s.bootstrap, s.redis) == ("127.0.0.1:39092", "redis://127.0.0.1:36379/0")
    assert not s.external_kafka and not s.external_redis
    assert s.state_path == PROJECT_ROOT / ".journeys"
    assert s.api_base_url == "http://127.0.0.1:8088"


def test_given_endpoints_are_used_instead_of_starting_our_own(monkeypatch: pytest.MonkeyPatch) -> None:
    s = make(monkeypatch, KAFKA_BOOTSTRAP_SERVERS="k:9092", REDIS_URL="redis://r:6379/1")
    assert s.external_kafka and s.external_redis
    assert (s.bootstrap, s.redis) == ("k:9092", "redis://r:6379/1")


def test_empty_endpoint_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    s = make(monkeypatch, KAFKA_BOOTSTRAP_SERVERS="", REDIS_URL="", JOURNEYS_KAFKA_PORT="1234")
    assert not s.external_kafka and not s.external_redis
    assert s.bootstrap == "127.0.0.1:1234"


def test_jar_cache_is_per_kafka_version_and_follows_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = make(monkeypatch, XDG_CACHE_HOME="/c")
    assert xdg.kafka_libs == Path(f"/c/journeys/kafka-{KAFKA_VERSION}/libs")
    assert make(monkeypatch, JOURNEYS_CACHE_DIR="/j").kafka_libs == Path(f"/j/kafka-{KAFKA_VERSION}/libs")


def test_api_base_url_reaches_a_wildcard_bind_over_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    s = make(monkeypatch, JOURNEYS_API_HOST="0.0.0.0", JOURNEYS_API_PORT="9000")
    assert s.api_base_url == "http://127.0.0.1:9000"
