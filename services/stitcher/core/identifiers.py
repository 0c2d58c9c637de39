"""Identifier normalisation, junk denylist, keyed pseudonymisation and masking.

Pure functions shared by the stitcher (on every event) and the API (for lookups). Only the keyed
hash (``id_key``) and the masked display value ever leave this module; the raw value never does.

Identifier types are open in channel_event.v1 (1.1), but the identity graph links on IDENTIFIER_TYPES
only: its script takes exactly these, each with a per-customer limit. ``normalise`` answers None for any
other type, so such an identifier never becomes a graph key; ``normalise_other`` gives it the form in
which it is carried on the stitched event (a keyed hash and a mask, ``other_identity_keys``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import phonenumbers

if TYPE_CHECKING:
    from services.common.settings import CommonSettings

# The types the identity graph links on (services.common.vocabulary.KNOWN_IDENTIFIER_TYPES, tested equal).
IDENTIFIER_TYPES: tuple[str, ...] = (
    "customer_id",
    "account_id",
    "email",
    "phone",
    "device_id",
    "cookie_id",
    "loyalty_id",
    "social_handle",
)
# Strongest first: a customer id is minted from the strongest identifier of its first event.
STRENGTH: tuple[str, ...] = (
    "customer_id",
    "account_id",
    "email",
    "phone",
    "loyalty_id",
    "social_handle",
    "device_id",
    "cookie_id",
)
DEFAULT_JUNK: frozenset[str] = frozenset(
    {
        "",
        "null",
        "nil",
        "undefined",
        "none",
        "0",
        "unknown",
        "n/a",
        "na",
        "-",
        "test",
        "anonymous",
        "guest",
        "00000000-0000-0000-0000-000000000000",
    }
)
# Placeholder mailboxes that many customers share: test@…, noreply@…, x@example.invalid etc.
_JUNK_EMAIL = re.compile(
    r"^(test|tests|testing|noreply|no-reply|donotreply|do-not-reply|none|null|unknown|nobody)@"
    r"|@(test|invalid|localhost)$|@[^@]*\.(test|invalid|localhost)$"
)


@dataclass(frozen=True)
class Denylist:
    """Values never used for stitching. ``values`` apply to every type (compared case-insensitively)."""

    values: frozenset[str] = DEFAULT_JUNK
    email_pattern: re.Pattern[str] = field(default=_JUNK_EMAIL)

    @classmethod
    def with_extra(cls, extra: str | None) -> Denylist:
        """The default denylist plus comma-separated extra values (JOURNEYS_JUNK_IDENTIFIERS)."""
        more = {v.strip().lower() for v in (extra or "").split(",") if v.strip()}
        return cls(values=DEFAULT_JUNK | more)

    @classmethod
    def from_settings(cls, settings: object) -> Denylist:
        # Only the stitcher's settings declare the extra list; the API shares it when both read the env.
        return cls.with_extra(getattr(settings, "junk_identifiers", None))


DEFAULT_DENYLIST = Denylist()


def normalise(id_type: str, raw: str, *, phone_region: str) -> str | None:
    """The canonical form of an identifier the graph links on, or None when unusable (a type the graph does
    not know, a bad phone, no '@')."""
    value = raw.strip()
    if id_type == "email":
        value = value.lower()
        usable = value.count("@") == 1 and not value.startswith("@") and not value.endswith("@")
        return value if usable else None
    if id_type == "phone":
        return _normalise_phone(value, phone_region)
    if id_type == "social_handle":
        # Handles are case-insensitive on every major network; '@ana' and 'ana' are the same handle.
        return value.lstrip("@").lower()
    if id_type not in IDENTIFIER_TYPES:
        return None
    return value


def normalise_other(id_type: str, raw: str) -> str | None:
    """An identifier of a type the graph does not know, as it is carried: trimmed, case kept (nothing says
    whether the type ignores case); None for a type the graph knows (``normalise`` is for those)."""
    if id_type in IDENTIFIER_TYPES:
        return None
    return raw.strip()


def _normalise_phone(value: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_junk(id_type: str, normalised: str, denylist: Denylist = DEFAULT_DENYLIST) -> bool:
    """True for placeholders that many customers share; they are never stitched on. A value without a
    single letter or digit (``---``, ``\x00@\x00``, only punctuation or control characters) names nobody:
    stitching on it would merge whoever sent the same noise."""
    if normalised.lower() in denylist.values or not any(ch.isalnum() for ch in normalised):
        return True
    if id_type == "email":
        return bool(denylist.email_pattern.search(normalised))
    if id_type == "phone":
        national = _national_digits(normalised)
        return len(set(national)) <= 1 or national in ("123456789", "1234567890", "0123456789")
    return False


def _national_digits(e164: str) -> str:
    digits = e164.lstrip("+")
    if e164.startswith("+"):
        # Country calling codes are prefix-free, so the first known one is the code (no re-parse).
        for size in (1, 2, 3):
            if int(digits[:size] or "0") in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                return digits[size:]
    return digits


def id_key(secret: bytes, id_type: str, normalised: str) -> str:
    """``<type>:<hex HMAC-SHA256(secret, '<type>:<normalised>')>`` — the only stored form of an identifier."""
    digest = hmac.new(secret, f"{id_type}:{normalised}".encode(), hashlib.sha256).hexdigest()
    return f"{id_type}:{digest}"


def mask(id_type: str, normalised: str) -> str:
    """A display value that lets an agent confirm an identifier without revealing it."""
    if id_type == "phone":
        return f"•••• {normalised[-4:]}"
    if id_type == "email":
        local, _, domain = normalised.partition("@")
        return f"{local[:1]}***@{domain}"
    shown = 4 if len(normalised) > 6 else 1
    return f"{normalised[:shown]}…"


def lookup_key(settings: CommonSettings, id_type: str, raw: str) -> str | None:
    """The id_key to look a raw identifier up by, or None when it is unusable or junk (API lookups)."""
    if id_type not in IDENTIFIER_TYPES:
        return None
    value = normalise(id_type, raw, phone_region=settings.phone_region)
    if value is None or is_junk(id_type, value, Denylist.from_settings(settings)):
        return None
    return id_key(settings.secret_bytes(), id_type, value)


def mint_customer_id(strongest_id_key: str) -> str:
    """``c_`` + 16 hex, derived from the minting event's strongest identifier, so replays mint the same id."""
    return "c_" + hashlib.sha256(strongest_id_key.encode()).hexdigest()[:16]


def strongest(id_keys: list[str]) -> str:
    """The identifier a new customer id is minted from: strongest type, then the smallest key."""
    return min(id_keys, key=lambda k: (STRENGTH.index(k.split(":", 1)[0]), k))
