"""The usable identifiers of an event: normalised, junk left out, keyed (HMAC) and masked, as ``Ident``s.

Pure functions; the only state is an in-process LRU cache of (type, raw) -> Ident, which keeps phone
parsing, HMAC and the mint hash off the hot path for identifiers seen before (they recur: that is the point).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from operator import attrgetter
from typing import NamedTuple

from msgspec import Struct

from services.common.records import IdentifierType
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
