"""The typed records that cross a boundary are held to their JSON Schemas: each Struct names exactly the
properties its schema names, requires exactly what the schema requires, and every valid example converts
to it and comes back as it was (fields it does not name dropped: contracts are open within a major)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from services.common import contracts
from services.common.documents import (
    AlertEvidence,
    AlertJourney,
    GapAlert,
    JourneyDocument,
    JourneySummary,
    decode_alert,
)
from services.common.records import (
    ChannelEvent,
    Device,
    IdentityMerge,
    Journey,
    StitchedEvent,
    Touchpoint,
)

pytestmark = pytest.mark.unit

# Struct -> (contract, JSON pointer of the object schema inside it)
HELD: dict[type[msgspec.Struct], tuple[str, str]] = {
    ChannelEvent: (contracts.CHANNEL_EVENT, ""),
    Journey: (contracts.CHANNEL_EVENT, "/properties/journey"),
    Device: (contracts.CHANNEL_EVENT, "/properties/device"),
    StitchedEvent: (contracts.STITCHED_EVENT, ""),
    IdentityMerge: (contracts.IDENTITY_MERGE, ""),
    GapAlert: (contracts.GAP_ALERT, ""),
    AlertJourney: (contracts.GAP_ALERT, "/properties/journey"),
    AlertEvidence: (contracts.GAP_ALERT, "/properties/evidence"),
    JourneyDocument: (contracts.JOURNEY, ""),
    JourneySummary: (contracts.JOURNEY, "/$defs/summary"),
    Touchpoint: (contracts.JOURNEY, "/$defs/touchpoint"),
}
# Roots whose valid examples must convert to the Struct and come back as they were.
ROOTS = {contracts.GAP_ALERT: GapAlert, contracts.JOURNEY: JourneyDocument}


def _at(schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: Any = schema
    for part in filter(None, pointer.split("/")):
        node = node[part]
    return node


@pytest.mark.parametrize("struct", list(HELD), ids=lambda s: s.__name__)
def test_struct_names_and_requires_what_its_schema_does(struct: type[msgspec.Struct]) -> None:
    contract, pointer = HELD[struct]
    schema = _at(contracts.load_schema(contract), pointer)
    fields = msgspec.structs.fields(struct)
    assert {f.encode_name for f in fields} == set(schema.get("properties", {})), struct.__name__
    assert {f.encode_name for f in fields if f.required} == set(schema.get("required", [])), struct.__name__


def _valid(contract: str) -> list[Path]:
    return sorted((contracts.SCHEMA_DIR / "examples" / contract / "valid").glob("*.json"))


def _named(doc: Any, typed: Any) -> Any:
    """``doc`` restricted to what ``typed`` (its to_builtins form) kept, recursively."""
    if isinstance(doc, dict) and isinstance(typed, dict):
        return {k: _named(v, typed[k]) for k, v in doc.items() if k in typed}
    if isinstance(doc, list) and isinstance(typed, list):
        return [_named(d, t) for d, t in zip(doc, typed, strict=True)]
    return doc


@pytest.mark.parametrize(
    ("contract", "path"), [(c, p) for c in ROOTS for p in _valid(c)], ids=lambda v: getattr(v, "stem", v)
)
def test_every_valid_example_converts_and_comes_back(contract: str, path: Path) -> None:
    doc = orjson.loads(path.read_bytes())
    typed = msgspec.to_builtins(msgspec.convert(doc, ROOTS[contract]))
    assert typed == _named(doc, typed)
    assert contracts.first_error(contract, typed) is None  # what it keeps is still valid
    if contract == contracts.GAP_ALERT:
        assert msgspec.to_builtins(decode_alert(path.read_bytes())) == typed
