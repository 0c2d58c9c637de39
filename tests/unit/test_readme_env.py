"""docs/configuration.md lists exactly the environment variables of the settings classes, with their defaults.

(The file keeps its name from when the table lived in the README.)"""

from __future__ import annotations

import pytest

from services.stack import envdoc
from services.stack.readme_table import CONFIG_DOC, render

pytestmark = pytest.mark.unit


def _table_rows() -> dict[str, str]:
    doc = CONFIG_DOC.read_text()
    table = doc.split("<!-- env-table -->", 1)[1].split("<!-- /env-table -->", 1)[0]
    return {line.split("|")[1].strip(" `"): line for line in table.splitlines() if line.startswith("| `")}


def test_the_table_lists_every_variable_with_its_default() -> None:
    rows = _table_rows()
    missing = [name for name, *_ in envdoc.rows() if name not in rows]
    assert not missing, f"{CONFIG_DOC.name} lacks {missing}: run `make env-table`"
    for name, default, _, _ in envdoc.rows():
        shown = f"`{default}`" if default else "_(unset)_"
        assert f"| {shown} |" in rows[name], (
            f"{CONFIG_DOC.name}: stale default for {name}: run `make env-table`"
        )


def test_the_table_lists_no_variable_that_is_gone() -> None:
    # A removed setting left in the table tells operators to set something nothing reads.
    known = {name for name, *_ in envdoc.rows()}
    stale = sorted(set(_table_rows()) - known)
    assert not stale, f"{CONFIG_DOC.name} still lists {stale}: run `make env-table`"


def test_regenerating_the_table_is_stable() -> None:
    doc = CONFIG_DOC.read_text()
    assert render(render(doc)) == render(doc)


def test_render_refuses_a_document_without_markers() -> None:
    with pytest.raises(ValueError, match="env-table"):
        render("# Configuration\nno table here\n")
