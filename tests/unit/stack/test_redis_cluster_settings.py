"""JOURNEYS_REDIS_CLUSTER: the stack's Redis becomes a local 3-master cluster, and its services know it."""

from __future__ import annotations

import pytest

from services.common.redis_conn import is_cluster, parse_cluster_url
from services.stack import apps
from services.stack.settings import StackSettings
from services.stack.stack import _is_infra, _safe_url

pytestmark = pytest.mark.unit


def test_cluster_setting_names_three_nodes_next_to_the_redis_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("JOURNEYS_REDIS_PORT", "41000")
    assert StackSettings().redis == "redis://127.0.0.1:41000/0"
    monkeypatch.setenv("JOURNEYS_REDIS_CLUSTER", "1")
    settings = StackSettings()
    assert settings.redis_cluster_ports == [41000, 41001, 41002]
    assert settings.redis == "redis+cluster://127.0.0.1:41000,127.0.0.1:41001,127.0.0.1:41002"
    env = apps.app_env(settings, "127.0.0.1:1", settings.redis)
    assert is_cluster(env["REDIS_URL"])
    assert [p for _, p in parse_cluster_url(env["REDIS_URL"]).nodes] == [41000, 41001, 41002]


def test_an_explicit_redis_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_REDIS_CLUSTER", "1")
    monkeypatch.setenv("REDIS_URL", "redis+cluster://10.0.0.1:7000")
    assert StackSettings().redis == "redis+cluster://10.0.0.1:7000"


def test_cluster_nodes_are_infrastructure_and_passwords_stay_hidden() -> None:
    assert _is_infra("redis-36379") and _is_infra("redis") and _is_infra("kafka")
    assert not _is_infra("stitcher") and not _is_infra("supervisor")
    assert _safe_url("redis+cluster://u:pw@h:1,h:2") == "redis+cluster://u:***@h:1,h:2"
