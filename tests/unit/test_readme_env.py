"""The README's configuration table lists every environment variable of every settings class."""

from __future__ import annotations

import pytest

from services.stack import envdoc
from services.stack.readme_table import README, render

pytestmark = pytest.mark.unit


def test_readme_lists_every_variable_with_its_default() -> None:
    readme = README.read_text()
    table = readme.split("<!-- env-table -->", 1)[1].split("<!-- /env-table -->", 1)[0]
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines() if line.startswith("| `")}
    missing = [name for name, *_ in envdoc.rows() if name not in rows]
    assert not missing, f"README lacks {missing}: run `make env-table`"
    for name, default, _, _ in envdoc.rows():
        shown = f"`{default}`" if default else "_(unset)_"
        assert f"| {shown} |" in rows[name], f"README shows a stale default for {name}: run `make env-table`"


def test_regenerating_the_table_is_stable() -> None:
    readme = README.read_text()
    assert render(render(readme)) == render(readme)
