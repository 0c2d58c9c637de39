"""Every contract compiles, accepts its valid examples and rejects its invalid ones."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import orjson
import pytest
import yaml

from services.common import contracts

pytestmark = pytest.mark.unit

EXAMPLES = contracts.SCHEMA_DIR / "examples"


def _examples(kind: str) -> list[tuple[str, Path]]:
    return [(c, p) for c in contracts.ALL_CONTRACTS for p in sorted((EXAMPLES / c / kind).glob("*.json"))]


@pytest.mark.parametrize("name", contracts.ALL_CONTRACTS)
def test_schema_is_valid_2020_12(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(contracts.load_schema(name))


@pytest.mark.parametrize("name", contracts.ALL_CONTRACTS)
def test_every_contract_has_valid_and_invalid_examples(name: str) -> None:
    assert list((EXAMPLES / name / "valid").glob("*.json")), name
    assert list((EXAMPLES / name / "invalid").glob("*.json")), name


@pytest.mark.parametrize(("name", "path"), _examples("valid"), ids=lambda v: getattr(v, "stem", v))
def test_valid_examples_pass(name: str, path: Path) -> None:
    assert list(contracts.errors(name, orjson.loads(path.read_bytes()))) == []


@pytest.mark.parametrize(("name", "path"), _examples("invalid"), ids=lambda v: getattr(v, "stem", v))
def test_invalid_examples_fail(name: str, path: Path) -> None:
    assert contracts.first_error(name, orjson.loads(path.read_bytes())) is not None


def test_default_journey_definitions_follow_their_contract() -> None:
    doc = yaml.safe_load((Path(contracts.__file__).parent / "default_journeys.yaml").read_text())
    assert list(contracts.errors(contracts.JOURNEY_DEFINITIONS, doc)) == []


def test_date_time_format_is_enforced_not_just_the_pattern() -> None:
    event = orjson.loads((EXAMPLES / "channel_event.v1/valid/phone_call_minimal.json").read_bytes())
    event["occurred_at"] = "2026-02-30T10:00:00Z"
    assert contracts.first_error(contracts.CHANNEL_EVENT, event) is not None
