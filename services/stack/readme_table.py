"""Rewrite the configuration table in docs/configuration.md from the settings classes (`make env-table`).

The module keeps its old name because `make env-table` runs it; the table moved out of the README when the
README became a short front door (issue 15)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from services.stack import envdoc
from services.stack.settings import PROJECT_ROOT

CONFIG_DOC = PROJECT_ROOT / "docs" / "configuration.md"
_TABLE = re.compile(r"(<!-- env-table -->\n).*?(<!-- /env-table -->)", re.DOTALL)


def render(doc: str) -> str:
    """``doc`` with the text between the env-table markers replaced by the current table."""
    if not _TABLE.search(doc):
        raise ValueError(f"{CONFIG_DOC.name} has no <!-- env-table --> ... <!-- /env-table --> block")
    return _TABLE.sub(lambda m: f"{m.group(1)}{envdoc.markdown()}\n{m.group(2)}", doc, count=1)


def write(path: Path = CONFIG_DOC) -> int:
    """Regenerate the table in ``path``; the number of variables it lists."""
    path.write_text(render(path.read_text()))
    return len(envdoc.rows())


def main() -> int:
    n = write()
    print(f"{CONFIG_DOC}: {n} variables", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
