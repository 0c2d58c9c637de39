"""The string patterns of the stream records, checked after decoding by ``services.common.record_codec``.

String patterns are checked after decoding, not by msgspec (its per-field regex call cost ~0.5 us each,
more than the rest of the decode); recurring values (customer ids, keys, stages) are remembered valid.

Patterns end in ``\\Z``, not ``$``: JSON Schema (ECMA-262) ``$`` never matches before a trailing newline,
Python's does.
"""

from __future__ import annotations

import re

from msgspec import UNSET, UnsetType

from services.common.records import ChannelEvent, IdentityMerge, StitchedEvent
from services.common.vocabulary import KNOWN_CHANNELS, KNOWN_IDENTIFIER_TYPES, OPEN_NAME_PATTERN

# -- patterns (checked by the decode functions) ----------------------------------------------------------
SCHEMA_VERSION_PATTERN = r"^1\.[0-9]+\Z"
CUSTOMER_ID_PATTERN = r"^c_[0-9a-f]{8,64}\Z"
ID_KEY_PATTERN = r"^[a-z_]+:[0-9a-f]{16,64}\Z"
OTHER_ID_KEY_PATTERN = r"^[a-z][a-z0-9_]{0,31}:[0-9a-f]{16,64}\Z"
EVENT_ID_PATTERN = r"^[A-Za-z0-9._:/@+\-]+\Z"
STAGE_PATTERN = r"^[a-z][a-z0-9_]{0,63}\Z"


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
