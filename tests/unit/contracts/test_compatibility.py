"""Every contract in schemas/ is a compatible successor of its released versions of the same major.

``schemas/<name>.v<major>.json`` is the contract now; ``schemas/released/<name>.v<major>.<minor>.json`` are
the versions that went out, never edited afterwards. Within a major (docs/contracts.md):

- nothing a reader accepted before is refused now: no new required field, no narrowed type, bound,
  pattern or value set, no field dropped (``compat.narrowings(released, current)``);
- for a contract this project produces, the only growth is new optional fields (and opening an object to
  fields not named yet): a reader of an earlier 1.x, dropping what it does not know, understands every
  new record (``compat.narrowings(current, released, additive=True)``). Contracts this project reads
  (INPUTS) may also widen: open a value set, accept longer strings.

Changing a contract: edit schemas/<name>.v<major>.json, raise the version in its description and copy it
to schemas/released/ under that version. This test then holds the copy to the file and the file to every
earlier release.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.common.contracts import SCHEMA_DIR
from tests.unit.contracts.compat import ANNOTATIONS, narrowings

pytestmark = pytest.mark.unit

RELEASED = SCHEMA_DIR / "released"
# Written by others, read here: a new version may also widen what it accepts.
INPUTS = {"channel_event", "journey_definitions"}
_CURRENT = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<major>[0-9]+)\.json$")
_RELEASE = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<major>[0-9]+)\.(?P<minor>[0-9]+)\.json$")
_VERSION = re.compile(r"\bv(?P<major>[0-9]+)\.(?P<minor>[0-9]+)\.(?:\s|$)")


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(path.read_bytes())
    return doc


def current() -> list[tuple[str, int, Path]]:
    found = [
        (m["name"], int(m["major"]), p)
        for p in sorted(SCHEMA_DIR.glob("*.json"))
        if (m := _CURRENT.match(p.name))
    ]
    assert found, f"no contracts in {SCHEMA_DIR}"
    return found


def releases(name: str, major: int) -> list[tuple[int, Path]]:
    """Released minor versions of ``name`` in ``major``, oldest first."""
    out = [
        (int(m["minor"]), p)
        for p in RELEASED.glob(f"{name}.v{major}.*.json")
        if (m := _RELEASE.match(p.name)) and m["name"] == name and int(m["major"]) == major
    ]
    return sorted(out)


def version(doc: dict[str, Any]) -> tuple[int, int]:
    found = _VERSION.search(doc.get("description", ""))
    assert found, "the description names no version 'vMAJOR.MINOR.'"
    return int(found["major"]), int(found["minor"])


def without_annotations(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: without_annotations(v) for k, v in doc.items() if k not in ANNOTATIONS - {"$defs"}}
    if isinstance(doc, list):
        return [without_annotations(v) for v in doc]
    return doc


def breaks(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    found = narrowings(old, new)
    if name not in INPUTS:
        found += [f"now also accepts: {p}" for p in narrowings(new, old, additive=True)]
    return found


CURRENT = current()
IDS = [name for name, _, _ in CURRENT]


@pytest.mark.parametrize(("name", "major", "path"), CURRENT, ids=IDS)
def test_the_current_version_is_released_as_it_is(name: str, major: int, path: Path) -> None:
    doc = load(path)
    at = version(doc)
    assert at[0] == major, f"{path.name} says v{at[0]}.{at[1]}"
    released = dict(releases(name, major))
    if not released:  # a new contract: its first version goes out with it
        assert at == (major, 0), f"{path.name}: a new contract starts at v{major}.0"
        pytest.skip(f"{name} is new: copy it to schemas/released/{name}.v{major}.0.json when it ships")
    assert at[1] in released, f"copy {path.name} to schemas/released/{name}.v{major}.{at[1]}.json"
    assert at[1] == max(released), (
        f"{path.name} is v{major}.{at[1]}, older than a released v{major}.{max(released)}"
    )
    copy = load(released[at[1]])
    assert without_annotations(copy) == without_annotations(doc), (
        f"{path.name} changed since v{major}.{at[1]} was released: raise its minor version and release it"
    )


@pytest.mark.parametrize(("name", "major", "path"), CURRENT, ids=IDS)
def test_every_release_keeps_what_the_ones_before_it_accepted(name: str, major: int, path: Path) -> None:
    chain = [(minor, load(p)) for minor, p in releases(name, major)] + [(version(load(path))[1], load(path))]
    problems = [
        f"v{major}.{a} -> v{major}.{b}: {p}"
        for i, (b, new) in enumerate(chain)
        for a, old in chain[:i]
        for p in breaks(name, old, new)
    ]
    assert not problems, "\n".join(problems)


def test_released_files_are_named_for_their_version() -> None:
    for path in sorted(RELEASED.glob("*.json")):
        m = _RELEASE.match(path.name)
        assert m, f"{path.name}: expected <name>.v<major>.<minor>.json"
        assert version(load(path)) == (int(m["major"]), int(m["minor"])), path.name
