from __future__ import annotations

import pytest

from services.common.settings import CommonSettings
from services.stack import envdoc
from services.stack.settings import StackSettings

pytestmark = pytest.mark.unit


def test_every_settings_class_is_found() -> None:
    classes = envdoc.settings_classes()
    assert classes[0] is CommonSettings
    assert StackSettings in classes


def test_each_variable_listed_once_with_its_default() -> None:
    names = [r[0] for r in envdoc.rows()]
    assert len(names) == len(set(names))
    row = {r[0]: r for r in envdoc.rows()}
    assert row["KAFKA_BOOTSTRAP_SERVERS"][1] == "127.0.0.1:39092"
    assert row["JOURNEYS_KAFKA_PORT"][1] == "39092"


def test_markdown_table_has_a_row_per_variable() -> None:
    table = envdoc.markdown().splitlines()
    assert table[0].startswith("| variable | default |")
    assert len(table) == 2 + len(envdoc.rows())
    assert "| `JOURNEYS_HMAC_SECRET` | _(unset)_ |" in envdoc.markdown()


def test_env_shows_the_values_in_effect_and_whether_they_are_set() -> None:
    out = envdoc.plain({"JOURNEYS_KAFKA_PORT": "41001", "JOURNEYS_LOG_LEVEL": ""}).splitlines()
    assert out[0].startswith("# 2 of ")
    assert any(ln.startswith("JOURNEYS_KAFKA_PORT=41001  # set: ") for ln in out)
    assert any(ln.startswith("JOURNEYS_REDIS_PORT=36379  # default: ") for ln in out)
    assert any(ln.startswith("JOURNEYS_LOG_LEVEL=  # set: ") for ln in out)  # set, even if empty


def test_env_never_prints_a_secret() -> None:
    environ = {
        "JOURNEYS_HMAC_SECRET": "hunter2",
        "JOURNEYS_API_TOKEN": "tok-123",
        "REDIS_URL": "redis://user:pa55@r:6379/0",
        "JOURNEYS_WEBHOOK_PASSWORD": "pw",
    }
    out = envdoc.plain(environ)
    for secret in ("hunter2", "tok-123", "pa55"):
        assert secret not in out
    assert "JOURNEYS_HMAC_SECRET=********  # set" in out
    assert "REDIS_URL=redis://user:********@r:6379/0  # set" in out
    assert {"JOURNEYS_HMAC_SECRET", "JOURNEYS_API_TOKEN"} <= envdoc.secret_names()
    assert envdoc.shown("JOURNEYS_KEY_PREFIX", "jr", set()) == "jr"  # KEY alone is not a secret
    cluster = envdoc.shown("REDIS_URL", "redis+cluster://u:pa55@h1:7000,h2:7001", set())
    assert cluster == "redis+cluster://u:********@h1:7000,h2:7001"
