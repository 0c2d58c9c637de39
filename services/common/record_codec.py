"""Decoding and encoding the stream records of ``services.common.records``, held to ``schemas/`` by a test.

msgspec decodes and validates in one compiled pass, several times cheaper than orjson + jsonschema-rs.
The JSON Schemas stay the contract: ``tests/unit/common/test_records.py`` proves each decoder accepts and
rejects exactly what the schema does. Where msgspec cannot say what the schema says, or says it slowly,
the decoders add a cheap check or hand the document to the schema itself:

- string patterns are checked after decoding, not by msgspec (``services.common.record_patterns``);
- the ``date-time`` format (calendar, leap seconds) is checked by ``rfc3339_ms``, which also gives the ms;
- the fast path is strict (e.g. JSON Schema ``integer`` admits ``5.0``, msgspec's ``int`` does not);
- anything the fast path refuses is parsed as plain JSON and judged by the JSON Schema validator, which
  also words the error; a document the schema accepts is then converted leniently (``5.0`` -> ``5``).
So a rare document costs the old price, and the common one a few microseconds. The Structs alone
(``msgspec.json.decode(value, type=ChannelEvent)``) do NOT check the patterns: use the decode functions.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from msgspec import Struct

from services.common.contracts import CHANNEL_EVENT, IDENTITY_MERGE, STITCHED_EVENT, validator
from services.common.record_patterns import channel_patterns_ok, merge_patterns_ok, stitched_patterns_ok
from services.common.records import ChannelEvent, IdentityMerge, RecordError, StitchedEvent
from services.common.rfc3339 import rfc3339_ms

# -- decoding ---------------------------------------------------------------------------------------------
T = TypeVar("T", bound=Struct)

_CHANNEL = msgspec.json.Decoder(ChannelEvent)
_STITCHED = msgspec.json.Decoder(StitchedEvent)
_MERGE = msgspec.json.Decoder(IdentityMerge)
_ANY = msgspec.json.Decoder().decode
ENCODER = msgspec.json.Encoder()
encode = ENCODER.encode


def decode_channel_fast(value: bytes) -> tuple[ChannelEvent, int] | None:
    """A plain channel_event.v1 and its occurred_at in epoch ms, or None when the fast path cannot say
    (then ``decode_channel`` or the JSON Schema decides)."""
    try:
        event = _CHANNEL.decode(value)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    ms = rfc3339_ms(event.occurred_at)
    if ms is None or not channel_patterns_ok(event):
        return None
    return event, ms


def decode_channel(value: bytes) -> ChannelEvent:
    """A plain channel_event.v1 (no CloudEvents envelope); raises RecordError exactly when the schema
    would reject the document (including an impossible date such as 2026-02-30)."""
    fast = decode_channel_fast(value)
    return _slow(value, CHANNEL_EVENT, ChannelEvent) if fast is None else fast[0]


def decode_stitched(value: bytes) -> StitchedEvent:
    """A stitched_event.v1; raises RecordError(malformed_json | schema_violation | unprocessable)."""
    try:
        event = _STITCHED.decode(value)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return _slow(value, STITCHED_EVENT, StitchedEvent)
    return event if stitched_patterns_ok(event) else _slow(value, STITCHED_EVENT, StitchedEvent)


def decode_merge(value: bytes) -> IdentityMerge:
    """An identity_merge.v1; raises RecordError(malformed_json | schema_violation | unprocessable)."""
    try:
        rec = _MERGE.decode(value)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return _slow(value, IDENTITY_MERGE, IdentityMerge)
    return rec if merge_patterns_ok(rec) else _slow(value, IDENTITY_MERGE, IdentityMerge)


def _exact_ints(doc: Any) -> Any:
    """Integral floats beyond 2**53 as ints: JSON Schema's ``integer`` admits 9007199254740994.0, msgspec's
    lax mode converts integral floats to int only up to 2**53."""
    if isinstance(doc, float):
        return int(doc) if doc.is_integer() and abs(doc) > 2**53 else doc
    if isinstance(doc, dict):
        return {k: _exact_ints(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_exact_ints(v) for v in doc]
    return doc


def from_valid(doc: Any, cls: type[T]) -> T:
    """A document the JSON Schema accepted, as its Struct (lenient: a JSON Schema integer may be 5.0)."""
    try:
        return msgspec.convert(_exact_ints(doc), cls, strict=False)
    except msgspec.ValidationError as exc:  # the schema and the Struct disagree: a bug, the test covers it
        raise RecordError("schema_violation", f"typed record refused a schema-valid document: {exc}") from exc


TOO_DEEP = "(root): nested too deeply to be judged"


def loads(value: bytes) -> Any:
    """Plain JSON -> Python (integers beyond 64 bits stay exact, unlike orjson); raises RecordError.
    Valid JSON nested ~1,000 deep exceeds the parser's recursion limit: a schema_violation, not a crash."""
    try:
        return _ANY(value)
    except msgspec.DecodeError as exc:
        raise RecordError("malformed_json", str(exc)[:200]) from None
    except RecursionError:
        raise RecordError("schema_violation", TOO_DEEP) from None


def violation(contract: str, doc: Any) -> tuple[list[str], str, str] | None:
    """The first violation of ``doc`` as (path, kind, message), None when it is valid; raises RecordError
    when the validator cannot judge it (jsonschema-rs stops ~250 levels deep: 'Recursion limit reached')."""
    check = validator(contract)
    try:
        if check.is_valid(doc):
            return None
        err = next(iter(check.iter_errors(doc)))
    except (ValueError, RecursionError):
        raise RecordError("schema_violation", TOO_DEEP) from None
    return [str(p) for p in err.instance_path], type(err.kind).__name__, err.message


def _slow(value: bytes, contract: str, cls: type[T]) -> T:
    try:
        doc = loads(value)
        found = violation(contract, doc)
        if found is None:
            return from_valid(doc, cls)
    except RecordError:
        raise
    except Exception as exc:  # any other failure on this one record: dead-letter it, never stall the loop
        raise RecordError("unprocessable", f"{type(exc).__name__} while decoding") from None
    path, kind, message = found
    where = "/".join(path) or "(root)"
    # A channel event holds raw identifiers: name the place and the rule, never the value.
    problem = f"{where}: {kind}" if contract == CHANNEL_EVENT else f"{where}: {message}"
    raise RecordError("schema_violation", problem[:200])
