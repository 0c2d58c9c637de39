from __future__ import annotations

import sys

import pytest

from services.stack.apps import app_env, apps, command
from services.stack.settings import StackSettings

pytestmark = pytest.mark.unit


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> StackSettings:
    for name in (
        "JOURNEYS_API_HOST",
        "JOURNEYS_BIND_HOST",
        "JOURNEYS_API_PORT",
        "JOURNEYS_STITCHER_METRICS_PORT",
        "JOURNEYS_DETECTOR_METRICS_PORT",
        "JOURNEYS_MAP_METRICS_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return StackSettings()


def test_services_and_their_health_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    found = {a.name: a for a in apps(settings(monkeypatch, JOURNEYS_API_PORT="9000"))}
    assert [a.command for a in found.values()] == ["stitcher", "detector", "api", "map"]
    assert found["stitcher"].health_url == "http://127.0.0.1:9101/metrics"
    assert found["detector"].health_url == "http://127.0.0.1:9102/metrics"
    assert found["map"].health_url == "http://127.0.0.1:9103/metrics"
    assert (found["api"].health_url, found["api"].port) == ("http://127.0.0.1:9000/healthz", 9000)


def test_services_run_under_our_interpreter() -> None:
    stitcher = apps(StackSettings())[0]
    assert command(stitcher) == [sys.executable, "-m", "services.cli.main", "stitcher"]


def test_services_inherit_the_callers_environment_plus_the_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_TIMER_CLOCK", "event")
    env = app_env(settings(monkeypatch), "127.0.0.1:1", "redis://127.0.0.1:2/0")
    assert env["JOURNEYS_TIMER_CLOCK"] == "event"
    assert (env["KAFKA_BOOTSTRAP_SERVERS"], env["REDIS_URL"]) == ("127.0.0.1:1", "redis://127.0.0.1:2/0")
    assert (
        env["JOURNEYS_STITCHER_METRICS_PORT"],
        env["JOURNEYS_DETECTOR_METRICS_PORT"],
        env["JOURNEYS_API_PORT"],
    ) == ("9101", "9102", "8088")


def test_listeners_bind_to_loopback_unless_the_bind_host_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    env = app_env(settings(monkeypatch), "127.0.0.1:1", "redis://127.0.0.1:2/0")
    assert env["JOURNEYS_BIND_HOST"] == "127.0.0.1" and "JOURNEYS_API_HOST" not in env
    wide = settings(monkeypatch, JOURNEYS_BIND_HOST="0.0.0.0")
    assert app_env(wide, "k:1", "redis://r:2/0")["JOURNEYS_BIND_HOST"] == "0.0.0.0"
    assert {a.health_url.split("/")[2].split(":")[0] for a in apps(wide)} == {"127.0.0.1"}  # probed locally
    one = settings(monkeypatch, JOURNEYS_BIND_HOST="10.1.2.3")
    assert {a.health_url.split("/")[2].split(":")[0] for a in apps(one)} == {"10.1.2.3"}
