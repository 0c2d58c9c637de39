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
