"""The open vocabularies and shared limits in code say what schemas/ says, and the graph's types agree."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from services.common import contracts, limits, records, vocabulary
from services.stitcher.core import identifiers

pytestmark = pytest.mark.unit

CHANNEL_EVENT = contracts.load_schema(contracts.CHANNEL_EVENT)
PROPS = CHANNEL_EVENT["properties"]


def test_known_channels_are_the_contracts_examples() -> None:
    assert list(vocabulary.KNOWN_CHANNELS) == PROPS["channel"]["examples"]
    assert set(vocabulary.KNOWN_CHANNELS) == set(get_args(records.Channel))
    definitions = contracts.load_schema(contracts.JOURNEY_DEFINITIONS)
    assert definitions["$defs"]["channel"]["examples"] == list(vocabulary.KNOWN_CHANNELS)


def test_the_graphs_identifier_types_are_the_named_ones_everywhere() -> None:
    named = list(PROPS["identifiers"]["properties"])
    assert list(vocabulary.KNOWN_IDENTIFIER_TYPES) == named
    assert identifiers.IDENTIFIER_TYPES == vocabulary.KNOWN_IDENTIFIER_TYPES
    assert set(get_args(records.IdentifierType)) == set(named)


def test_open_names_use_one_pattern_and_one_length() -> None:
    schema_pattern = PROPS["channel"]["pattern"]
    assert PROPS["identifiers"]["propertyNames"]["pattern"] == schema_pattern
    assert schema_pattern.replace("$", "\\Z") == vocabulary.OPEN_NAME_PATTERN
    assert re.match(vocabulary.OPEN_NAME_PATTERN, "a" * limits.MAX_OPEN_NAME_LENGTH)
    assert not re.match(vocabulary.OPEN_NAME_PATTERN, "a" * (limits.MAX_OPEN_NAME_LENGTH + 1))
    assert all(re.match(vocabulary.OPEN_NAME_PATTERN, c) for c in vocabulary.KNOWN_CHANNELS)


def test_identifiers_per_event_is_the_contracts_bound() -> None:
    assert PROPS["identifiers"]["maxProperties"] == limits.MAX_IDENTIFIERS_PER_EVENT
    stitched = contracts.load_schema(contracts.STITCHED_EVENT)["properties"]
    assert stitched["other_identity_keys"]["maxItems"] == limits.MAX_IDENTIFIERS_PER_EVENT


def test_unknown_values_are_labelled_other() -> None:
    assert vocabulary.channel_label("web") == "web"
    assert vocabulary.channel_label("kiosk") == "other"
    assert vocabulary.identifier_type_label("email") == "email"
    assert vocabulary.identifier_type_label("whatsapp_id") == "other"
    assert vocabulary.in_graph("phone") and not vocabulary.in_graph("whatsapp_id")


def test_limits_are_positive_integers() -> None:
    assert limits.ALL and all(isinstance(v, int) and v > 0 for v in limits.ALL.values())
