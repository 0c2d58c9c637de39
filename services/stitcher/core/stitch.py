"""Building the outgoing records: usable identifiers of an event, stitched events, touchpoints, merge records.

Pure functions; the only state is an in-process cache of (type, raw) -> (id_key, mask), which keeps
phone parsing and HMAC off the hot path for identifiers seen before (they recur: that is the point).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
)

SCHEMA_VERSION = "1.0"
# Channel-event fields copied onto stitched events (identifiers are replaced by keys and masks).
STITCHED_FIELDS = ("department", "journey", "intent", "outcome", "sentiment", "nps", "emotion", "device",
                   "persona", "source", "attributes")
TOUCHPOINT_FIELDS = ("department", "journey", "intent", "outcome", "sentiment", "nps", "emotion", "device",
                     "persona")


@dataclass(frozen=True, slots=True)
class Ident:
    id_type: str
    key: str
    masked: str
    rank: int = 0  # position in STRENGTH: the minting order, precomputed off the hot path


class IdentifierHasher:
    """Normalise, drop junk, hash and mask an event's identifiers, with a bounded LRU cache."""

    def __init__(self, secret: bytes, phone_region: str, denylist: Denylist = DEFAULT_DENYLIST,
                 cache_size: int = 500_000) -> None:
        self._secret, self._region, self._deny, self._size = secret, phone_region, denylist, cache_size
        self._cache: OrderedDict[tuple[str, str], Ident | None] = OrderedDict()

    def one(self, id_type: str, raw: str) -> Ident | None:
        ck = (id_type, raw)
        hit = self._cache.get(ck, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        value = normalise(id_type, raw, phone_region=self._region)
        ident = None
        if value is not None and not is_junk(id_type, value, self._deny):
            ident = Ident(id_type, id_key(self._secret, id_type, value), mask(id_type, value),
                          STRENGTH.index(id_type))
        self._cache[ck] = ident
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return ident

    def usable(self, identifiers: Mapping[str, str]) -> list[Ident]:
        """The event's usable identifiers in contract order (junk and unparseable ones left out)."""
        out = []
        for id_type in IDENTIFIER_TYPES:
            raw = identifiers.get(id_type)
            if raw is not None and (ident := self.one(id_type, raw)) is not None:
                out.append(ident)
        return out


def mint_for(idents: list[Ident]) -> str:
    """The customer id a first-seen event mints (same choice as identifiers.strongest)."""
    return mint_customer_id(min(idents, key=lambda i: (i.rank, i.key)).key)


def device_key(idents: list[Ident]) -> str | None:
    """Keyed hash of the device (else the cookie): the id_key's digest, shortened."""
    best = None
    for ident in idents:
        if ident.id_type == "device_id":
            best = ident
            break
        if ident.id_type == "cookie_id":
            best = ident
    return None if best is None else best.key[len(best.id_type) + 1:len(best.id_type) + 33]


def stitched_event(event: Mapping[str, Any], occurred_ms: int, customer_id: str, idents: list[Ident],
                   conflict: bool, now_ms: int) -> dict[str, Any]:
    """The stitched_event.v1 record of one channel event."""
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": event["event_id"],
        "occurred_at": event["occurred_at"],
        "occurred_at_ms": occurred_ms,
        "channel": event["channel"],
        "touchpoint": event["touchpoint"],
        "direction": event.get("direction", "inbound"),
        "visibility": event.get("visibility", "onstage"),
    }
    for name in STITCHED_FIELDS:
        if name in event:
            out[name] = event[name]
    dkey = device_key(idents)
    if dkey is not None:
        out["device_key"] = dkey
    out["customer_id"] = customer_id
    out["identity_keys"] = [i.key for i in idents]
    out["masked"] = {i.id_type: i.masked for i in idents}
    if conflict:
        out["merge_conflict"] = True
    out["stitched_at_ms"] = now_ms
    return out


def touchpoint(stitched: Mapping[str, Any]) -> dict[str, Any]:
    """The journey.v1 touchpoint stored in the journey store for a stitched event."""
    out = {name: stitched[name] for name in ("event_id", "occurred_at", "channel", "touchpoint", "direction",
                                              "visibility")}
    for name in TOUCHPOINT_FIELDS:
        if name in stitched:
            out[name] = stitched[name]
    return out


def record_id(kind: str, survivor: str, loser: str) -> str:
    """Deterministic, so a redelivered merge produces the same record."""
    return "m_" + hashlib.sha256(f"{kind}|{survivor}|{loser}".encode()).hexdigest()[:16]


def merge_record(kind: str, survivor: str, loser: str, event_id: str, identifier_types: list[str],
                 limit: str | None, occurred_ms: int, now_ms: int) -> dict[str, Any]:
    """An identity_merge.v1 record (kind merge or conflict)."""
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "record_id": record_id(kind, survivor, loser), "kind": kind,
        "survivor": survivor, "loser": loser, "event_id": event_id, "identifier_types": identifier_types,
    }
    if limit:
        out["limit"] = limit
    out["occurred_at_ms"] = occurred_ms
    out["recorded_at_ms"] = now_ms
    return out
