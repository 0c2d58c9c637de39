"""Building the outgoing records: usable identifiers of an event, stitched events, touchpoints, merge records.

Pure functions; the only state is an in-process LRU cache of (type, raw) -> Ident, which keeps phone
parsing, HMAC and the mint hash off the hot path for identifiers seen before (they recur: that is the point).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from operator import attrgetter
from typing import Any, Literal, NamedTuple, cast

import msgspec
from msgspec import UNSET, Struct, UnsetType

from services.common import runtime
from services.common.record_codec import decode_stitched, encode
from services.common.records import (
    ChannelEvent,
    IdentifierType,
    IdentityMerge,
    StitchedEvent,
    Touchpoint,
)
from services.stitcher.core.identifiers import (
    DEFAULT_DENYLIST,
    IDENTIFIER_TYPES,
    STRENGTH,
    Denylist,
    id_key,
    is_junk,
    mask,
    mint_customer_id,
    normalise,
    normalise_other,
)

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
_ORDER = {t: i for i, t in enumerate(IDENTIFIER_TYPES)}
GRAPH_TYPES = frozenset(IDENTIFIER_TYPES)


class Ident(Struct, frozen=True, gc=False):
    """One usable identifier of an event. A Struct without GC tracking: the cache holds up to
    JOURNEYS_IDENTIFIER_CACHE of them, and tracked objects make every full garbage collection slower."""

    id_type: str
    key: str
    masked: str
    rank: int = 0  # position in STRENGTH: the minting order
    order: int = 0  # position in IDENTIFIER_TYPES: the contract order of identity_keys
    mint: str = ""  # the customer id an event whose strongest identifier is this one mints
    device: str = ""  # device_id/cookie_id: the stitched event's device_key when this one is chosen
    ref: str = ""  # '<type>:<16 hex of the key>': how a stored touchpoint names it (core/split.py)


_by_order = attrgetter("order")
_by_type = attrgetter("id_type")


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    maxsize: int
    currsize: int


class IdentifierHasher:
    """Normalise, drop junk, hash and mask an event's identifiers, with a bounded LRU cache.

    The cache is functools.lru_cache (C): one hash probe per identifier, and a hit makes the entry the
    most recent, so the identifiers of active customers stay cached while one-off cookies age out.
    ``cache_size`` (JOURNEYS_IDENTIFIER_CACHE) bounds it; an entry is ~400 B (key tuple, Ident, links).
    Memory latency, not Python, is most of a lookup once the cache outgrows the CPU caches.
    """

    def __init__(
        self,
        secret: bytes,
        phone_region: str,
        denylist: Denylist = DEFAULT_DENYLIST,
        cache_size: int = 500_000,
    ) -> None:
        self._secret, self._region, self._deny = secret, phone_region, denylist
        self.one: Callable[[str, str], Ident | None] = lru_cache(maxsize=max(cache_size, 1))(self._compute)
        self.other: Callable[[str, str], Ident | None] = lru_cache(maxsize=max(cache_size // 16, 1))(
            self._compute_other
        )

    def __len__(self) -> int:
        return self.cache_info().currsize

    def cache_info(self) -> CacheInfo:
        """Hits, misses, maxsize and currsize of the identifier cache (e.g. for a hit-ratio gauge)."""
        return CacheInfo(*self.one.cache_info())  # type: ignore[attr-defined]

    def _compute(self, id_type: str, raw: str) -> Ident | None:
        value = normalise(id_type, raw, phone_region=self._region)
        if value is None or is_junk(id_type, value, self._deny):
            return None
        key = id_key(self._secret, id_type, value)
        device = key[len(id_type) + 1 : len(id_type) + 33] if id_type in ("device_id", "cookie_id") else ""
        return Ident(
            id_type,
            key,
            mask(id_type, value),
            STRENGTH.index(id_type),
            _ORDER[id_type],
            mint_customer_id(key),
            device,
            key_ref(key),
        )

    def _compute_other(self, id_type: str, raw: str) -> Ident | None:
        value = normalise_other(id_type, raw)
        if value is None or is_junk(id_type, value, self._deny):
            return None
        return Ident(id_type, id_key(self._secret, id_type, value), mask(id_type, value))

    def carried(self, identifiers: Mapping[str, str]) -> list[Ident]:
        """The event's identifiers of types the identity graph does not know, keyed and masked, by type:
        carried on the stitched event, never linked on (junk left out, as for the others)."""
        out = [
            ident
            for t, raw in identifiers.items()
            if t not in GRAPH_TYPES and (ident := self.other(t, raw)) is not None
        ]
        out.sort(key=_by_type)
        return out

    def usable(self, identifiers: Mapping[str, str] | Mapping[IdentifierType, str]) -> list[Ident]:
        """The event's usable identifiers the graph links on, in contract order (junk, unparseable ones and
        types the graph does not know left out: see ``carried``)."""
        one = self.one
        out = [ident for t, raw in identifiers.items() if (ident := one(t, raw)) is not None]
        if len(out) > 1:
            out.sort(key=_by_order)
        return out


REF_HEX = 16  # 64 bits of the keyed hash: unique among one customer's identifiers with room to spare


def key_ref(id_key: str) -> str:
    """The short form of an identifier key a touchpoint keeps ('<type>:<first 16 hex>')."""
    return id_key[: id_key.index(":") + 1 + REF_HEX]


def mint_for(idents: Sequence[Ident]) -> str:
    """The customer id a first-seen event mints (same choice as identifiers.strongest: strongest type,
    then the smallest key; an event has one identifier per type, so the key rarely decides)."""
    best = idents[0]
    for ident in idents:
        if ident.rank < best.rank or (ident.rank == best.rank and ident.key < best.key):
            best = ident
    return best.mint or mint_customer_id(best.key)


def device_key(idents: Sequence[Ident]) -> str | None:
    """Keyed hash of the device (else the cookie): the id_key's digest, shortened."""
    best = None
    for ident in idents:
        if ident.id_type == "device_id":
            best = ident
            break
        if ident.id_type == "cookie_id":
            best = ident
    return None if best is None else best.key[len(best.id_type) + 1 : len(best.id_type) + 33]


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
