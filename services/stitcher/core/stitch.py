"""Building the outgoing records: stitched events, touchpoints, merge records.

Pure functions; the event's usable identifiers (``Ident``) come from ``hashed_identifiers.IdentifierHasher``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

import msgspec
from msgspec import UNSET, Struct, UnsetType

from services.common import runtime
from services.common.record_codec import decode_stitched, encode
from services.common.records import ChannelEvent, IdentityMerge, StitchedEvent, Touchpoint
from services.stitcher.core.hashed_identifiers import Ident, key_ref

SCHEMA_VERSION = "1.0"  # identity_merge.v1 records
STITCHED_VERSION = "1.1"  # stitched_event.v1.1: other_identity_keys
STITCHED_CE_TYPE = b"dev.journeys.stitched_event.v1"
MERGE_CE_TYPE = b"dev.journeys.identity_merge.v1"
# Channel-event fields copied onto stitched events (identifiers are replaced by keys and masks).
STITCHED_FIELDS = (
    "department",
    "journey",
    "intent",
    "outcome",
    "sentiment",
    "nps",
    "emotion",
    "device",
    "persona",
    "source",
    "attributes",
)
TOUCHPOINT_FIELDS = (
    "department",
    "journey",
    "intent",
    "outcome",
    "sentiment",
    "nps",
    "emotion",
    "device",
    "persona",
)


class _StitchedOut(Struct, gc=False):
    """stitched_event.v1 for encoding only: every field positional (a Struct built from 26 keywords costs
    ~2 us, from positions ~0.2 us) in the order the stitcher has always written; UNSET ones are left out.
    decode_stitched (records.StitchedEvent) reads it back; a test holds it to the schema."""

    schema_version: str
    event_id: str
    occurred_at: str
    occurred_at_ms: int
    channel: str
    touchpoint: str
    direction: str
    visibility: str
    department: Any
    journey: Any
    intent: Any
    outcome: Any
    sentiment: Any
    nps: Any
    emotion: Any
    device: Any
    persona: Any
    source: Any
    attributes: Any
    device_key: Any
    customer_id: str
    identity_keys: list[str]
    other_identity_keys: Any
    masked: dict[str, str]
    merge_conflict: Any
    stitched_at_ms: int


class _TouchpointOut(Struct, gc=False):
    """journey.v1 touchpoint for encoding only (positional, like _StitchedOut); see records.Touchpoint."""

    event_id: str
    occurred_at: str
    channel: str
    touchpoint: str
    direction: str
    visibility: str
    department: Any
    journey: Any
    intent: Any
    outcome: Any
    sentiment: Any
    nps: Any
    emotion: Any
    device: Any
    persona: Any
    ik: Any = UNSET


def touchpoint_json(ev: ChannelEvent, idents: Sequence[Ident] = ()) -> bytes:
    """The journey.v1 touchpoint JSON of a channel event (what the journey store keeps per event).

    ``ik``: the short refs of the event's identifiers (``key_ref``), so a split can send each touchpoint to
    the customer its own identifiers belong to. Kept in the store only: the API returns contract fields."""
    return encode(
        _TouchpointOut(
            ev.event_id,
            ev.occurred_at,
            ev.channel,
            ev.touchpoint,
            ev.direction,
            ev.visibility,
            ev.department,
            ev.journey,
            ev.intent,
            ev.outcome,
            ev.sentiment,
            ev.nps,
            ev.emotion,
            ev.device,
            ev.persona,
            [i.ref or key_ref(i.key) for i in idents] if idents else UNSET,
        )
    )


def touchpoint_record(ev: ChannelEvent) -> Touchpoint:
    """The journey.v1 touchpoint of a channel event, typed (tests; the hot path uses touchpoint_json)."""
    return msgspec.json.decode(touchpoint_json(ev), type=Touchpoint)


def stitched_json(
    ev: ChannelEvent,
    occurred_ms: int,
    customer_id: str,
    idents: Sequence[Ident],
    conflict: bool,
    now_ms: int,
    carried: Sequence[Ident] = (),
) -> bytes:
    """The stitched_event.v1 JSON of one channel event; ``carried``: its identifiers of types the graph
    does not know (IdentifierHasher.carried), as other_identity_keys and masks."""
    keys: list[str] = []
    masked: dict[str, str] = {}
    dkey: str | UnsetType = UNSET
    for i in idents:  # one pass: identity_keys, masks, and device_key (device_id sorts before cookie_id)
        keys.append(i.key)
        masked[i.id_type] = i.masked
        if i.device and dkey is UNSET:
            dkey = i.device
    others: list[str] | UnsetType = UNSET
    if carried:
        others = []
        for i in carried:
            others.append(i.key)
            masked[i.id_type] = i.masked
    return encode(
        _StitchedOut(
            STITCHED_VERSION,
            ev.event_id,
            ev.occurred_at,
            occurred_ms,
            ev.channel,
            ev.touchpoint,
            ev.direction,
            ev.visibility,
            ev.department,
            ev.journey,
            ev.intent,
            ev.outcome,
            ev.sentiment,
            ev.nps,
            ev.emotion,
            ev.device,
            ev.persona,
            ev.source,
            ev.attributes,
            dkey,
            customer_id,
            keys,
            others,
            masked,
            True if conflict else UNSET,
            now_ms,
        )
    )


def stitched_event(
    ev: ChannelEvent,
    occurred_ms: int,
    customer_id: str,
    idents: Sequence[Ident],
    conflict: bool,
    now_ms: int,
    carried: Sequence[Ident] = (),
) -> StitchedEvent:
    """The stitched_event.v1 record of one channel event, typed (``msgspec.to_builtins`` gives a dict)."""
    return decode_stitched(stitched_json(ev, occurred_ms, customer_id, idents, conflict, now_ms, carried))


def touchpoint(stitched: Mapping[str, Any]) -> dict[str, Any]:
    """The journey.v1 touchpoint of a stitched event given as a dict (a decoded stitched_event.v1)."""
    out = {
        name: stitched[name]
        for name in ("event_id", "occurred_at", "channel", "touchpoint", "direction", "visibility")
    }
    for name in TOUCHPOINT_FIELDS:
        if name in stitched:
            out[name] = stitched[name]
    return out


def record_id(kind: str, survivor: str, loser: str) -> str:
    """Deterministic, so a redelivered merge produces the same record."""
    return "m_" + hashlib.sha256(f"{kind}|{survivor}|{loser}".encode()).hexdigest()[:16]


def merge_record(
    kind: str,
    survivor: str,
    loser: str,
    event_id: str,
    identifier_types: list[str],
    limit: str | None,
    occurred_ms: int,
    now_ms: int,
) -> IdentityMerge:
    """An identity_merge.v1 record (kind merge or conflict)."""
    if kind not in ("merge", "conflict"):
        raise ValueError(f"unknown merge record kind {kind!r}")
    return IdentityMerge(
        schema_version=SCHEMA_VERSION,
        record_id=record_id(kind, survivor, loser),
        kind=cast(Literal["merge", "conflict"], kind),
        survivor=survivor,
        loser=loser,
        event_id=event_id,
        identifier_types=identifier_types,
        limit=limit or UNSET,
        occurred_at_ms=occurred_ms,
        recorded_at_ms=now_ms,
    )


def ce_headers(ce_type: bytes, ce_id: str, ce_time: str) -> list[tuple[str, bytes]]:
    """CloudEvents binary-mode headers of a record the stitcher produces."""
    return runtime.ce_headers(ce_type, b"journeys/stitcher", ce_id, ce_time)
