"""The JSON Schema contracts in ``schemas/``, loaded once and compiled with jsonschema-rs.

Every boundary (Kafka topics, the HTTP API, the definitions file) is validated against these
files, so code and tests follow one source of truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
BASE_URI = "https://journeys.dev/schemas/"

CHANNEL_EVENT = "channel_event.v1"
STITCHED_EVENT = "stitched_event.v1"
IDENTITY_MERGE = "identity_merge.v1"
GAP_ALERT = "gap_alert.v1"
JOURNEY = "journey.v1"
JOURNEY_DEFINITIONS = "journey_definitions.v1"
JOURNEY_MAP = "journey_map.v1"
ALL_CONTRACTS = (
    CHANNEL_EVENT,
    STITCHED_EVENT,
    IDENTITY_MERGE,
    GAP_ALERT,
    JOURNEY,
    JOURNEY_DEFINITIONS,
    JOURNEY_MAP,
)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed schema document ``schemas/<name>.json``."""
    data: dict[str, Any] = orjson.loads((SCHEMA_DIR / f"{name}.json").read_bytes())
    return data


@cache
def _registry() -> jsonschema_rs.Registry:
    # Schemas reference each other by file name (journey -> gap_alert); resolve them locally, never online.
    return jsonschema_rs.Registry([(BASE_URI + f"{n}.json", load_schema(n)) for n in ALL_CONTRACTS])


@cache
def validator(name: str) -> jsonschema_rs.Draft202012Validator:
    """A compiled validator for one contract (formats such as date-time are checked)."""
    return jsonschema_rs.Draft202012Validator(load_schema(name), validate_formats=True, registry=_registry())


def errors(name: str, instance: Any) -> Iterator[str]:
    """Human-readable violations of ``instance`` against contract ``name``: 'path: message'."""
    for err in validator(name).iter_errors(instance):
        path = "/".join(str(p) for p in err.instance_path) or "(root)"
        yield f"{path}: {err.message}"


def first_error(name: str, instance: Any) -> str | None:
    """The first violation, or None when ``instance`` is valid. Cheap on the hot path."""
    v = validator(name)
    if v.is_valid(instance):
        return None
    return next(errors(name, instance), "invalid")
