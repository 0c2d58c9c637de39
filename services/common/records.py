"""Typed records (msgspec Structs) for what crosses a boundary, held to ``schemas/`` by a test.

msgspec decodes and validates in one compiled pass, several times cheaper than orjson + jsonschema-rs.
The JSON Schemas stay the contract: ``tests/unit/common/test_records.py`` proves each decoder accepts and
rejects exactly what the schema does. Where msgspec cannot say what the schema says, or says it slowly,
the decoders add a cheap check or hand the document to the schema itself:

- string patterns are checked after decoding, not by msgspec (its per-field regex call cost ~0.5 us each,
  more than the rest of the decode); recurring values (customer ids, keys, stages) are remembered valid;
- the ``date-time`` format (calendar, leap seconds) is checked by ``rfc3339_ms``, which also gives the ms;
- the fast path is strict (e.g. JSON Schema ``integer`` admits ``5.0``, msgspec's ``int`` does not);
- anything the fast path refuses is parsed as plain JSON and judged by the JSON Schema validator, which
  also words the error; a document the schema accepts is then converted leniently (``5.0`` -> ``5``).
So a rare document costs the old price, and the common one a few microseconds. The Structs alone
(``msgspec.json.decode(value, type=ChannelEvent)``) do NOT check the patterns: use the decode functions.

Contracts are open within a major version (docs/contracts.md): a field a Struct does not name is ignored
(dropped), so a 1.x record with a new field decodes; channel names and identifier types are open strings
checked against a name pattern, the known values being listed in ``services.common.vocabulary``.

Patterns end in ``\\Z``, not ``$``: JSON Schema (ECMA-262) ``$`` never matches before a trailing newline,
Python's does. Optional fields are ``UNSET`` (never encoded), so absent stays absent on the way out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from services.common.contracts import CHANNEL_EVENT, IDENTITY_MERGE, STITCHED_EVENT, validator
from services.common.limits import MAX_IDENTIFIERS_PER_EVENT
from services.common.vocabulary import KNOWN_CHANNELS, KNOWN_IDENTIFIER_TYPES, OPEN_NAME_PATTERN

SCHEMA_VERSION = "1.0"
# unprocessable: the decoder itself raised on the record (a limit or a bug), so it is dead-lettered alone.
RecordReason = Literal["malformed_json", "schema_violation", "unprocessable"]
# stitched_event.v1 occurred_at_ms: the instants an RFC 3339 date-time can name that Python's datetime can
# format (0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z); a consumer formats it, so anything beyond
# would raise there, on every redelivery.
MIN_EVENT_MS, MAX_EVENT_MS = -62_135_596_800_000, 253_402_300_799_999

# -- patterns (checked by the decode functions) ----------------------------------------------------------
SCHEMA_VERSION_PATTERN = r"^1\.[0-9]+\Z"
CUSTOMER_ID_PATTERN = r"^c_[0-9a-f]{8,64}\Z"
ID_KEY_PATTERN = r"^[a-z_]+:[0-9a-f]{16,64}\Z"
OTHER_ID_KEY_PATTERN = r"^[a-z][a-z0-9_]{0,31}:[0-9a-f]{16,64}\Z"
EVENT_ID_PATTERN = r"^[A-Za-z0-9._:/@+\-]+\Z"
STAGE_PATTERN = r"^[a-z][a-z0-9_]{0,63}\Z"
# The schema's date-time pattern; the calendar (day of month, leap second) is rfc3339_ms's job.
DATE_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)

# -- shared constrained types ---------------------------------------------------------------------------
# The identifier types the identity graph links on (an event may carry others: identifiers are open).
IdentifierType = Literal[
    "customer_id", "account_id", "email", "phone", "device_id", "cookie_id", "loyalty_id", "social_handle"
]
# The channels the gap rules know; a channel event may name any other (OPEN_NAME_PATTERN).
Channel = Literal[
    "web", "mobile_app", "email", "sms", "phone", "ivr", "chat", "social", "store", "field", "other"
]
OpenName = Annotated[str, Meta(max_length=32)]  # OPEN_NAME_PATTERN, checked by channel_patterns_ok
Direction = Literal["inbound", "outbound"]
Visibility = Literal["onstage", "offstage"]
Outcome = Literal["success", "failure", "abandoned", "pending", "transferred", "resolved", "unresolved"]
DeviceType = Literal["desktop", "mobile", "tablet", "landline", "kiosk", "pos", "other"]
Sentiment = Annotated[int, Meta(ge=-1, le=1)] | Annotated[float, Meta(ge=-1, le=1)]
Nps = Annotated[int, Meta(ge=0, le=10)]
AttributeValue = Annotated[str, Meta(max_length=256)] | int | float | bool | None


Text32 = Annotated[str, Meta(min_length=1, max_length=32)]
Text64 = Annotated[str, Meta(min_length=1, max_length=64)]
Text128 = Annotated[str, Meta(min_length=1, max_length=128)]


class RecordError(ValueError):
    """A record that is not valid JSON (``malformed_json``) or breaks its contract (``schema_violation``)."""

    def __init__(self, reason: RecordReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


# -- journey and device: the stitched (loose) shape, and the channel-event (strict) subclass ------------
class StitchedJourney(Struct, frozen=True, gc=False):
    """stitched_event.v1 ``journey``: type and stage strings (other keys are allowed and ignored)."""

    type: str
    stage: str


class Journey(StitchedJourney, frozen=True, gc=False):
    """channel_event.v1 ``journey``: type and stage (STAGE_PATTERN, checked by decode_channel); other keys
    (a later 1.x) are dropped."""


class StitchedDevice(Struct, frozen=True, gc=False):
    """stitched_event.v1 ``device``: any object; the three fields consumers read (others are ignored)."""

    type: Any = UNSET
    os: Any = UNSET
    model: Any = UNSET


class Device(StitchedDevice, frozen=True, gc=False):
    type: DeviceType | UnsetType = UNSET
    os: Annotated[str, Meta(max_length=64)] | UnsetType = UNSET
    model: Annotated[str, Meta(max_length=64)] | UnsetType = UNSET


# -- channel_event.v1 (input) ---------------------------------------------------------------------------
class ChannelEvent(Struct, frozen=True, gc=False, kw_only=True):
    """channel_event.v1 as produced by channel systems. Decode with ``decode_channel`` (pattern checks).
    Fields of a later 1.x that this one does not name are dropped here, never dead-lettered."""

    schema_version: str = SCHEMA_VERSION
    event_id: Annotated[str, Meta(min_length=1, max_length=128)]
    occurred_at: Annotated[str, Meta(max_length=40)]
    channel: OpenName
    touchpoint: Text128
    identifiers: Annotated[
        dict[OpenName, Annotated[str, Meta(max_length=256)]],
        Meta(min_length=1, max_length=MAX_IDENTIFIERS_PER_EVENT),
    ]
    direction: Direction = "inbound"
    visibility: Visibility = "onstage"
    department: Text64 | UnsetType = UNSET
    journey: Journey | UnsetType = UNSET
    intent: Text64 | UnsetType = UNSET
    outcome: Outcome | UnsetType = UNSET
    sentiment: Sentiment | UnsetType = UNSET
    nps: Nps | UnsetType = UNSET
    emotion: Text32 | UnsetType = UNSET
    device: Device | UnsetType = UNSET
    persona: Text64 | UnsetType = UNSET
    source: Annotated[str, Meta(max_length=128)] | UnsetType = UNSET
    attributes: (
        Annotated[dict[Annotated[str, Meta(max_length=64)], AttributeValue], Meta(max_length=32)] | UnsetType
    ) = UNSET


# -- stitched_event.v1 ----------------------------------------------------------------------------------
class StitchedEvent(Struct, frozen=True, gc=False, kw_only=True):
    """stitched_event.v1; fields in the order the stitcher has always written them. Fields of a later 1.x
    that this one does not name are dropped."""

    schema_version: str
    event_id: Text128
    occurred_at: Annotated[str, Meta(max_length=40)]
    occurred_at_ms: Annotated[int, Meta(ge=MIN_EVENT_MS, le=MAX_EVENT_MS)]
    channel: str
    touchpoint: str
    direction: Direction
    visibility: Visibility
    department: str | UnsetType = UNSET
    journey: StitchedJourney | UnsetType = UNSET
    intent: str | UnsetType = UNSET
    outcome: str | UnsetType = UNSET
    sentiment: Sentiment | UnsetType = UNSET
    nps: Nps | UnsetType = UNSET
    emotion: str | UnsetType = UNSET
    device: StitchedDevice | UnsetType = UNSET
    persona: str | UnsetType = UNSET
    source: str | UnsetType = UNSET
    attributes: dict[str, Any] | UnsetType = UNSET
    device_key: str | UnsetType = UNSET
    customer_id: str
    identity_keys: list[str]
    other_identity_keys: Annotated[list[str], Meta(max_length=MAX_IDENTIFIERS_PER_EVENT)] | UnsetType = UNSET
    masked: dict[str, str] | UnsetType = UNSET
    merge_conflict: bool | UnsetType = UNSET
    stitched_at_ms: int
    # Never allowed (the schema says ``false``): a raw identifiers object here is a leak. Named only so
    # that stitched_patterns_ok sees it and refuses the record.
    identifiers: Any = UNSET


# -- identity_merge.v1 ----------------------------------------------------------------------------------
class IdentityMerge(Struct, frozen=True, gc=False, kw_only=True):
    schema_version: str
    record_id: str
    kind: Literal["merge", "conflict"]
    survivor: str
    loser: str
    event_id: str
    identifier_types: list[str] | UnsetType = UNSET
    limit: str | UnsetType = UNSET
    occurred_at_ms: int | UnsetType = UNSET
    recorded_at_ms: int
    split: Any = UNSET  # 1.2: {split_id, action: split|undo, by}, an admin's split or its undo (open)


# -- journey.v1 touchpoint (the journey store's per-event JSON) -----------------------------------------
class Touchpoint(Struct, frozen=True, gc=False, kw_only=True):
    event_id: str
    occurred_at: str
    channel: str
    touchpoint: str
    direction: Direction
    visibility: Visibility
    department: str | UnsetType = UNSET
    journey: StitchedJourney | UnsetType = UNSET
    intent: str | UnsetType = UNSET
    outcome: str | UnsetType = UNSET
    sentiment: Sentiment | UnsetType = UNSET
    nps: Nps | UnsetType = UNSET
    emotion: str | UnsetType = UNSET
    device: StitchedDevice | UnsetType = UNSET
    persona: str | UnsetType = UNSET


# -- cheap pattern checks ------------------------------------------------------------------------------------
class _Known:
    """Strings known to match a pattern: a set in front of the regex, because ids, keys and stages recur
    and a set probe costs a fraction of a regex call. Bounded: cleared when full (it only saves work)."""

    def __init__(self, pattern: str, limit: int) -> None:
        self.seen: set[str] = set()
        self._match = re.compile(pattern).match
        self._limit = limit

    def check(self, text: str) -> bool:
        """Slow half of ``text in known.seen or known.check(text)``."""
        if self._match(text) is None:
            return False
        if len(self.seen) >= self._limit:
            self.seen.clear()
        self.seen.add(text)
        return True


_event_id = re.compile(EVENT_ID_PATTERN).match  # event ids never recur: the regex alone
_VERSION = _Known(SCHEMA_VERSION_PATTERN, 64)
_STAGE = _Known(STAGE_PATTERN, 10_000)
_CUSTOMER = _Known(CUSTOMER_ID_PATTERN, 200_000)
_ID_KEY = _Known(ID_KEY_PATTERN, 200_000)
_OTHER_ID_KEY = re.compile(OTHER_ID_KEY_PATTERN).match  # rare: the regex alone
_NAME = _Known(OPEN_NAME_PATTERN, 1_000)
_NAME.seen.update(KNOWN_CHANNELS, KNOWN_IDENTIFIER_TYPES)
_names = _NAME.seen
_known_ids = frozenset(KNOWN_IDENTIFIER_TYPES)
_versions, _stages, _customers, _id_keys = _VERSION.seen, _STAGE.seen, _CUSTOMER.seen, _ID_KEY.seen


def channel_patterns_ok(ev: ChannelEvent) -> bool:
    """The channel_event.v1 patterns msgspec left unchecked (occurred_at is rfc3339_ms's)."""
    if _event_id(ev.event_id) is None:
        return False
    if ev.schema_version not in _versions and not _VERSION.check(ev.schema_version):
        return False
    if ev.channel not in _names and not _NAME.check(ev.channel):
        return False
    if not _known_ids.issuperset(ev.identifiers):  # one C call in the common case: only known types
        for id_type in ev.identifiers:
            if id_type not in _names and not _NAME.check(id_type):
                return False
    journey = ev.journey
    if journey is UNSET:
        return True
    return (journey.type in _stages or _STAGE.check(journey.type)) and (
        journey.stage in _stages or _STAGE.check(journey.stage)
    )


def stitched_patterns_ok(ev: StitchedEvent) -> bool:
    if ev.schema_version not in _versions and not _VERSION.check(ev.schema_version):
        return False
    if ev.customer_id not in _customers and not _CUSTOMER.check(ev.customer_id):
        return False
    for key in ev.identity_keys:  # a plain loop: all(<generator>) costs more than the checks
        if key not in _id_keys and not _ID_KEY.check(key):
            return False
    if ev.identifiers is not UNSET:
        return False
    others = ev.other_identity_keys
    return isinstance(others, UnsetType) or all(_OTHER_ID_KEY(k) for k in others)


def merge_patterns_ok(rec: IdentityMerge) -> bool:
    return (
        (rec.schema_version in _versions or _VERSION.check(rec.schema_version))
        and (rec.survivor in _customers or _CUSTOMER.check(rec.survivor))
        and (rec.loser in _customers or _CUSTOMER.check(rec.loser))
    )


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


# -- RFC 3339 date-time ------------------------------------------------------------------------------------
_DATE_TIME = re.compile(DATE_TIME_PATTERN).match
# The common shape, which datetime.fromisoformat (C) parses exactly as RFC 3339 reads it; anything else
# (t/z in lower case, leap seconds, year 0, offsets fromisoformat refuses) takes the exact arithmetic.
_COMMON = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\Z"
).match
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_fromisoformat = datetime.fromisoformat
_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def rfc3339_ms(text: str) -> int | None:
    """Epoch ms (fraction truncated) of a JSON Schema ``date-time`` matching DATE_TIME_PATTERN, or None when
    it is not one: wrong shape, no Feb 30, hours < 24, offsets < 24:00, a leap second only at 23:59:60 UTC
    (counted as the next second, like POSIX time)."""
    if _COMMON(text) is not None:
        try:
            return (_fromisoformat(text) - _EPOCH) // _MS
        except (ValueError, OverflowError):
            pass
    return _rfc3339_exact(text) if _DATE_TIME(text) is not None else None


def _days_from_civil(y: int, m: int, d: int) -> int:
    # Howard Hinnant's days_from_civil: proleptic Gregorian, any year (datetime stops at year 1).
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _rfc3339_exact(text: str) -> int | None:
    y, mo, d = int(text[0:4]), int(text[5:7]), int(text[8:10])
    hh, mi, ss = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if not 1 <= mo <= 12 or d < 1 or hh > 23 or mi > 59 or ss > 60:
        return None
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if d > (29 if mo == 2 and leap else _DAYS[mo]):
        return None
    tail = text[19:]
    frac_ms = 0
    if tail[0] == ".":
        end = 1
        while tail[end].isdigit():
            end += 1
        frac_ms = int(tail[1:end][:3].ljust(3, "0"))
        tail = tail[end:]
    offset_min = 0
    if tail not in ("Z", "z"):
        oh, om = int(tail[1:3]), int(tail[4:6])
        if oh > 23 or om > 59:
            return None
        offset_min = (oh * 60 + om) * (-1 if tail[0] == "-" else 1)
    if ss == 60 and (hh * 60 + mi - offset_min) % 1440 != 1439:
        return None
    minutes = _days_from_civil(y, mo, d) * 1440 + hh * 60 + mi - offset_min
    return (minutes * 60 + ss) * 1000 + frac_ms
