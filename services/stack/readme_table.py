"""Rewrite the README's configuration table from the settings classes (`make env-table`)."""

from __future__ import annotations

import re
import sys

from services.stack import envdoc
from services.stack.settings import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
_TABLE = re.compile(r"(<!-- env-table -->\n).*?(<!-- /env-table -->)", re.DOTALL)


def render(readme: str) -> str:
    """``readme`` with the text between the env-table markers replaced by the current table."""
    if not _TABLE.search(readme):
        raise ValueError("README.md has no <!-- env-table --> ... <!-- /env-table --> block")
    return _TABLE.sub(lambda m: f"{m.group(1)}{envdoc.markdown()}\n{m.group(2)}", readme, count=1)


def main() -> int:
    README.write_text(render(README.read_text()))
    print(f"{README}: {len(envdoc.rows())} variables", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
