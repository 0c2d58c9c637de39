"""The typed decoders accept and reject exactly what the JSON Schemas do (schemas/ is the contract)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common import contracts, record_codec, rfc3339
from services.common.records import RecordError
from tests.unit.common.record_docs import channel_events, identity_merges, mutated, stitched_events

pytestmark = pytest.mark.unit

DECODERS: dict[str, Callable[[bytes], msgspec.Struct]] = {
    contracts.CHANNEL_EVENT: record_codec.decode_channel,
    contracts.STITCHED_EVENT: record_codec.decode_stitched,
    contracts.IDENTITY_MERGE: record_codec.decode_merge,
}
DEFAULTS = {
    contracts.CHANNEL_EVENT: {"schema_version": "1.0", "direction": "inbound", "visibility": "onstage"}
}
EXAMPLE_DIR = contracts.SCHEMA_DIR / "examples"
EXAMPLES = [(name, p) for name in DECODERS for p in sorted((EXAMPLE_DIR / name).glob("*/*"))]


def normal(value: Any) -> Any:
    """JSON Schema's view of a value: 5.0 and 5 are the same integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normal(v) for v in value]
    return value


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()  # orjson refuses integers beyond 64 bits


def agrees(name: str, value: bytes) -> None:
    """The decoder accepts exactly what the schema does, and keeps every field it names of what it accepts
    (contracts are open within a major: a field it does not name is dropped, docs/contracts.md)."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        with pytest.raises(RecordError) as info:
            DECODERS[name](value)
        assert info.value.reason == "malformed_json"
        return
    expected = contracts.first_error(name, doc)
    try:
        typed = DECODERS[name](value)
    except RecordError as exc:
        assert expected is not None, f"typed decoder refused a valid {name}: {exc}"
        assert exc.reason == "schema_violation"
        return
    assert expected is None, f"typed decoder accepted an invalid {name}: {expected}"
    kept = msgspec.to_builtins(typed)
    exact = json.loads(value)  # orjson turns integers beyond 64 bits into floats; msgspec keeps them
    named = {f.encode_name for f in msgspec.structs.fields(type(typed))}
    exact = {k: v for k, v in exact.items() if k in named}
    # Open objects the consumers read a few fields of: only those fields are kept.
    for field in ("journey", "device"):
        if field in exact and isinstance(exact[field], dict):
            exact[field] = {k: v for k, v in exact[field].items() if k in kept[field]}
    assert normal(kept) == normal({**DEFAULTS.get(name, {}), **exact})


@pytest.mark.parametrize(("name", "path"), EXAMPLES, ids=lambda v: getattr(v, "stem", v))
def test_every_example_is_judged_as_the_schema_judges_it(name: str, path: Path) -> None:
    agrees(name, path.read_bytes())
    valid = path.parent.name == "valid"
    try:
        DECODERS[name](path.read_bytes())
        assert valid
    except RecordError:
        assert not valid


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated(channel_events()))
def test_channel_event_decoder_matches_the_schema(doc: dict[str, Any]) -> None:
    agrees(contracts.CHANNEL_EVENT, dumps(doc))


@FUZZ
@given(mutated(stitched_events()))
def test_stitched_event_decoder_matches_the_schema(doc: dict[str, Any]) -> None:
    agrees(contracts.STITCHED_EVENT, dumps(doc))


@FUZZ
@given(mutated(identity_merges()))
def test_identity_merge_decoder_matches_the_schema(doc: dict[str, Any]) -> None:
    agrees(contracts.IDENTITY_MERGE, dumps(doc))


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(sorted(DECODERS)),
    st.binary(max_size=40)
    | st.sampled_from([b"", b"{", b"[]", b"null", b'{"a":1', b"\xff", b'{"event_id": NaN}']),
)
def test_garbage_is_malformed_or_a_violation_never_a_crash(name: str, value: bytes) -> None:
    agrees(name, value)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2026-11-03T10:00:00Z", True),
        ("2026-02-29T10:00:00Z", False),
        ("2024-02-29T10:00:00Z", True),
        ("1900-02-29T00:00:00Z", False),
        ("2000-02-29T00:00:00Z", True),
        ("2026-11-03T24:00:00Z", False),
        ("2026-11-03T23:59:60Z", True),
        ("2026-11-03T23:59:60+01:00", False),
        ("2026-11-04T00:29:60+00:30", True),
        ("2026-11-03T10:00:00+24:00", False),
        ("2026-11-03T10:00:00+23:59", True),
        ("2026-11-31T10:00:00Z", False),
    ],
)
def test_date_time_calendar_matches_the_format_check(text: str, valid: bool) -> None:
    assert (rfc3339.rfc3339_ms(text) is not None) is valid
    check = contracts.validator(contracts.CHANNEL_EVENT)
    doc = {
        "event_id": "e",
        "occurred_at": text,
        "channel": "web",
        "touchpoint": "t",
        "identifiers": {"email": "x"},
    }
    assert check.is_valid(doc) is valid


def test_date_time_to_epoch_ms() -> None:
    assert rfc3339.rfc3339_ms("2026-11-02T09:15:02.120+01:00") == 1_793_607_302_120
    assert rfc3339.rfc3339_ms("2026-11-03T10:00:00.123456789-00:30") == 1_793_700_000_123 + 1_800_000
    assert rfc3339.rfc3339_ms("2026-11-03T23:59:60Z") == rfc3339.rfc3339_ms("2026-11-04T00:00:00Z")
    assert rfc3339.rfc3339_ms("0000-03-01T00:00:00Z") == -62_162_035_200_000


def test_a_stitched_event_survives_a_round_trip() -> None:
    value = (EXAMPLE_DIR / "stitched_event.v1" / "valid" / "stitched_web.json").read_bytes()
    event = record_codec.decode_stitched(value)
    again = record_codec.decode_stitched(record_codec.encode(event))
    assert again == event and orjson.loads(record_codec.encode(event)).keys() == orjson.loads(value).keys()


def test_channel_errors_never_quote_an_identifier() -> None:
    doc = {
        "event_id": "e",
        "occurred_at": "2026-11-03T10:00:00Z",
        "channel": "web",
        "touchpoint": "t",
        "identifiers": {"email": "secret.person@example.com" * 20},
    }
    with pytest.raises(RecordError) as info:
        record_codec.decode_channel(dumps(doc))
    assert "secret" not in info.value.detail and "identifiers/email" in info.value.detail
