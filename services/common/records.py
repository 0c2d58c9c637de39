"""Typed records (msgspec Structs) for what crosses a boundary, held to ``schemas/`` by a test.

Decode them with ``services.common.record_codec``: it checks what msgspec cannot say (the patterns of
``services.common.record_patterns``, the date-time of ``services.common.rfc3339``). The Structs alone
(``msgspec.json.decode(value, type=ChannelEvent)``) do NOT check the patterns: use the decode functions.

Contracts are open within a major version (docs/contracts.md): a field a Struct does not name is ignored
(dropped), so a 1.x record with a new field decodes; channel names and identifier types are open strings
checked against a name pattern, the known values being listed in ``services.common.vocabulary``.

Optional fields are ``UNSET`` (never encoded), so absent stays absent on the way out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from services.common.limits import MAX_IDENTIFIERS_PER_EVENT

SCHEMA_VERSION = "1.0"
# unprocessable: the decoder itself raised on the record (a limit or a bug), so it is dead-lettered alone.
RecordReason = Literal["malformed_json", "schema_violation", "unprocessable"]
# stitched_event.v1 occurred_at_ms: the instants an RFC 3339 date-time can name that Python's datetime can
# format (0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z); a consumer formats it, so anything beyond
# would raise there, on every redelivery.
MIN_EVENT_MS, MAX_EVENT_MS = -62_135_596_800_000, 253_402_300_799_999

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
