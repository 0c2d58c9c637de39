"""The compatibility walk finds the changes that break readers, and lets additive ones through."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.contracts.compat import narrowings

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "maxLength": 10},
        "kind": {"enum": ["a", "b"]},
        "n": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
        "ids": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"email": {"$ref": "#/$defs/s"}, "phone": {"$ref": "#/$defs/s"}},
        },
    },
    "$defs": {"s": {"type": "string"}},
}


def changed(**edits: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    for path, value in edits.items():
        *parents, last = path.split("__")
        node = doc
        for p in parents:
            node = node[p]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return doc


@pytest.mark.parametrize(
    ("name", "new"),
    [
        ("a new required field", changed(required=["id", "kind"])),
        ("a value dropped from a set", changed(properties__kind={"enum": ["a"]})),
        ("a lower maximum", changed(properties__id={"type": "string", "maxLength": 5})),
        ("a higher minimum", changed(properties__n={"type": "integer", "minimum": 1})),
        ("a narrower type", changed(properties__n={"type": "integer", "minimum": 0, "multipleOf": 2})),
        ("a new pattern", changed(properties__id={"type": "string", "maxLength": 10, "pattern": "^x"})),
        ("a field removed", changed(properties__tags=None)),
        ("an item type narrowed", changed(properties__tags={"type": "array", "items": {"type": "integer"}})),
        ("a $def narrowed", changed(**{"$defs": {"s": {"type": "string", "maxLength": 3}}})),
        (
            "names constrained below what was named",
            changed(properties__ids={"type": "object", "propertyNames": {"pattern": "^[a-z]{1,4}$"}}),
        ),
        (
            "fewer properties than were named",
            changed(
                properties__ids={
                    "type": "object",
                    "maxProperties": 1,
                    "properties": BASE["properties"]["ids"]["properties"],
                }
            ),
        ),
    ],
)
def test_a_narrowing_is_found(name: str, new: dict[str, Any]) -> None:
    assert narrowings(BASE, new), name


@pytest.mark.parametrize(
    ("name", "new"),
    [
        ("the same", changed()),
        ("a new optional field", changed(properties__extra={"type": "string"})),
        ("the object opened", changed(additionalProperties=None)),
        ("a value added to a set", changed(properties__kind={"enum": ["a", "b", "c"]})),
        (
            "a value set opened to a pattern",
            changed(properties__kind={"type": "string", "pattern": "^[a-z]$"}),
        ),
        ("a higher maximum", changed(properties__id={"type": "string", "maxLength": 20})),
        (
            "open names that cover the named ones",
            changed(
                properties__ids={
                    "type": "object",
                    "maxProperties": 8,
                    "propertyNames": {"pattern": "^[a-z]+$"},
                    "additionalProperties": {"type": "string"},
                    "properties": BASE["properties"]["ids"]["properties"],
                }
            ),
        ),
        (
            "descriptions and examples",
            changed(
                description="now documented", properties__n={"type": "integer", "minimum": 0, "examples": [1]}
            ),
        ),
    ],
)
def test_a_widening_is_no_narrowing(name: str, new: dict[str, Any]) -> None:
    assert narrowings(BASE, new) == [], name


def test_a_produced_contract_may_only_add_optional_fields() -> None:
    """additive=True asks the reverse: what does the new version produce that an old reader refuses?"""
    grown = changed(properties__extra={"type": "string"}, additionalProperties=None)
    assert narrowings(grown, BASE, additive=True) == []
    more_values = changed(properties__kind={"enum": ["a", "b", "c"]})
    assert narrowings(more_values, BASE, additive=True) == ["/kind: no longer accepts ['c']"]
    optional_now = changed(required=[])
    assert narrowings(optional_now, BASE, additive=True) == ["(root): no longer required ['id']"]
