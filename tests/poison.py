"""Poison records: inputs that once raised inside a batch (or made its output undeliverable), each with the
dead-letter reason it must get. Shared by the decoder unit tests and the loops' integration tests.

``channel_poison(event)`` / ``stitched_poison(doc)`` / ``merge_poison(doc)`` build them from one valid
document of the contract; ``ODD_BUT_VALID`` are inputs that look poisonous but are valid (they must be
stitched, never dead-lettered).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# A record of this size fits the broker's default max.message.bytes (1,048,588 for the whole batch), but
# its dead-letter copy, with the dlq_ headers, does not: the copy must be truncated.
FITS_BUT_ITS_COPY_DOES_NOT = 1_048_400


@dataclass(frozen=True)
class Poison:
    kind: str
    value: bytes | None
    reason: str


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # the standard library: it writes NaN, huge ints and deep nesting


def _with(doc: dict[str, Any], raw_json: str) -> bytes:
    """``doc`` with ``raw_json`` spliced in as one more member (text no JSON library would write)."""
    body = _dumps(doc)
    return body[:-1] + b", " + raw_json.encode() + b"}"


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def padded_to(doc: dict[str, Any], size: int, field: str) -> bytes:
    """``doc`` with ``field`` grown until the JSON is exactly ``size`` bytes."""
    base = len(_dumps({**doc, field: ""}))
    return _dumps({**doc, field: "x" * (size - base)})


def channel_poison(event: dict[str, Any]) -> list[Poison]:
    """Every poison kind for the stitcher's input, built from one valid channel event."""
    bad_id = dict(event, identifiers={"phone": "+" + "9" * 40})
    return [
        Poison("year_0", _dumps(dict(event, occurred_at="0000-01-01T00:00:00Z")), "bad_timestamp"),
        Poison(
            "year_9999_offset_overflow",
            _dumps(dict(event, occurred_at="9999-12-31T23:59:59-23:59")),
            "bad_timestamp",
        ),
        Poison("year_10000", _dumps(dict(event, occurred_at="10000-01-01T00:00:00Z")), "bad_timestamp"),
        Poison("epoch_number", _dumps(dict(event, occurred_at=10**30)), "bad_timestamp"),
        Poison("epoch_float", _dumps(dict(event, occurred_at=1.7e300)), "bad_timestamp"),
        Poison(
            "nested_300_in_attributes",
            _with(event, f'"attributes": {{"a": {nested(300)}}}'),
            "schema_violation",
        ),
        Poison("nested_5000", _with(event, f'"attributes": {{"a": {nested(5000)}}}'), "schema_violation"),
        Poison(
            "nested_objects",
            _with(event, '"device": ' + '{"a": ' * 2000 + "1" + "}" * 2000),
            "schema_violation",
        ),
        Poison("huge_string", _dumps(dict(event, touchpoint="x" * 60_000)), "schema_violation"),
        Poison(
            "invalid_utf8",
            _dumps(event).replace(b'"touchpoint": "', b'"touchpoint": "\xff\xfe'),
            "malformed_json",
        ),
        Poison("lone_surrogate", _with(event, '"intent": "a\\ud800b"'), "malformed_json"),
        Poison("nan", _with(event, '"sentiment": NaN'), "malformed_json"),
        Poison("infinity", _with(event, '"attributes": {"x": Infinity}'), "malformed_json"),
        Poison("float_beyond_double", _with(event, '"attributes": {"x": 1e400}'), "malformed_json"),
        Poison("int_beyond_int64_where_bounded", _with(event, f'"nps": {2**70}'), "schema_violation"),
        Poison("tombstone", None, "malformed_json"),
        Poison("empty", b"", "malformed_json"),
        Poison("not_an_object", b"[1, 2, 3]", "schema_violation"),
        Poison("identifier_normalises_to_nothing", _dumps(bad_id), "no_identifier"),
        Poison(
            "identifiers_of_noise_only",
            _dumps(dict(event, identifiers={"email": "\u0000@\u0000", "account_id": "---"})),
            "no_identifier",
        ),
        Poison(
            "oversized_copy_too_large",
            padded_to(event, FITS_BUT_ITS_COPY_DOES_NOT, "touchpoint"),
            "oversized",
        ),
    ]


def odd_but_valid(event: dict[str, Any]) -> list[tuple[str, bytes]]:
    """Channel events that look like poison but are valid: they must be stitched."""
    return [
        ("int_beyond_int64_in_attributes", _dumps(dict(event, attributes={"n": 2**70}))),
        (
            "duplicate_keys_last_wins",
            _dumps(dict(event, touchpoint="first")).replace(
                b'"touchpoint": "first"', b'"touchpoint": "first", "touchpoint": "last"'
            ),
        ),
        ("control_characters", _dumps(dict(event, touchpoint="a\u0000b\u001f", intent="\u2028"))),
        # channel_event is open within its major (docs/contracts.md): a later 1.x with a field, a channel and
        # an identifier type this version does not know is stitched (the unknown type is carried, not linked).
        (
            "later_minor_version",
            _dumps(
                dict(
                    event,
                    schema_version="1.9",
                    locale="pt-PT",
                    channel="kiosk",
                    identifiers={**event["identifiers"], "whatsapp_id": "+351912345678"},
                )
            ),
        ),
    ]


def stitched_poison(doc: dict[str, Any]) -> list[Poison]:
    """Poison kinds for the gap detector's stitched-events input, from one valid stitched event."""
    return [
        Poison(
            "occurred_at_ms_beyond_year_9999", _dumps(dict(doc, occurred_at_ms=10**30)), "schema_violation"
        ),
        Poison("occurred_at_ms_beyond_int64", _dumps(dict(doc, occurred_at_ms=-(2**70))), "schema_violation"),
        Poison("nested_5000", _with(doc, f'"attributes": {{"a": {nested(5000)}}}'), "schema_violation"),
        Poison(
            "invalid_utf8", _dumps(doc).replace(b'"touchpoint": "', b'"touchpoint": "\xff'), "malformed_json"
        ),
        Poison("lone_surrogate", _with(doc, '"intent": "\\udc00"'), "malformed_json"),
        Poison("nan", _with(doc, '"sentiment": NaN'), "malformed_json"),
        Poison("tombstone", None, "malformed_json"),
        Poison(
            "invalid_and_its_copy_too_large",
            padded_to(dict(doc, customer_id="not-a-customer"), FITS_BUT_ITS_COPY_DOES_NOT, "touchpoint"),
            "schema_violation",
        ),
    ]


def merge_poison(doc: dict[str, Any]) -> list[Poison]:
    """Poison kinds for the gap detector's identity-merges input, from one valid merge record."""
    return [
        Poison("nested_300", _with(doc, f'"identifier_types": {nested(300)}'), "schema_violation"),
        Poison("nested_5000", _with(doc, f'"identifier_types": {nested(5000)}'), "schema_violation"),
        Poison(
            "invalid_utf8", _dumps(doc).replace(b'"record_id": "', b'"record_id": "\xff'), "malformed_json"
        ),
        Poison("nan", _with(doc, '"occurred_at_ms": NaN'), "malformed_json"),
        Poison("tombstone", None, "malformed_json"),
    ]
