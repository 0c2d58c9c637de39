"""The open vocabularies of the contracts: channel names and identifier types.

channel_event.v1 names channels and identifier types by open strings (OPEN_NAME_PATTERN): a channel system
may send ``kiosk`` or a ``whatsapp_id`` before this project knows them, and the event is stitched, not
dead-lettered (docs/contracts.md). The values below are the ones the code knows:

- KNOWN_CHANNELS: the channels the gap rules and the default journey definitions speak of; an event on
  another channel is stitched and carried as sent, and counted as ``other`` in metric labels
  (``channel_label``), so a producer cannot grow a metric's label set without bound.
- KNOWN_IDENTIFIER_TYPES: the types the identity graph links on, in contract order; the stitcher's
  identity script takes exactly these, each with its per-customer limit (JOURNEYS_MERGE_LIMITS). An
  identifier of another type is carried on the stitched event as a keyed hash and a mask
  (``other_identity_keys``) but never enters the identity graph: nobody has said how far it can be
  trusted to link two customers, nor set its limit. Adding a type to the graph is a code change
  (CONTRIBUTING.md, "Adding a channel or an identifier type").
"""

from __future__ import annotations

from typing import Final

OPEN_NAME_PATTERN: Final = r"^[a-z][a-z0-9_]{0,31}\Z"
OTHER: Final = "other"

KNOWN_CHANNELS: Final = (
    "web",
    "mobile_app",
    "email",
    "sms",
    "phone",
    "ivr",
    "chat",
    "social",
    "store",
    "field",
    "other",
)
KNOWN_IDENTIFIER_TYPES: Final = (
    "customer_id",
    "account_id",
    "email",
    "phone",
    "device_id",
    "cookie_id",
    "loyalty_id",
    "social_handle",
)
# Personas are open strings on the events; the journey map and the detector's alert counter keep only a
# configured list apart (JOURNEYS_MAP_PERSONAS, these by default) and count any other as ``other``.
DEFAULT_PERSONAS: Final = (
    "digital_native",
    "phone_first_senior",
    "busy_professional",
    "store_loyal",
    "social_complainer",
    "price_hunter",
    "small_business_owner",
)
PERSONAS_HELP: Final = (
    "Personas the journey map keeps apart and journeys_alerts_total labels (comma "
    "separated); any other is 'other'. Each adds series to both: keep the list short."
)
_CHANNELS = frozenset(KNOWN_CHANNELS)
_TYPES = frozenset(KNOWN_IDENTIFIER_TYPES)


def channel_label(channel: str) -> str:
    """The metric label of a channel: itself when known, else ``other``."""
    return channel if channel in _CHANNELS else OTHER


def identifier_type_label(id_type: str) -> str:
    """The metric label of an identifier type: itself when the graph knows it, else ``other``."""
    return id_type if id_type in _TYPES else OTHER


def persona_label(persona: object, known: frozenset[str]) -> str:
    """The metric label of a persona: itself when in the configured list ``known``, else ``other`` (also
    for an alert or event that names none)."""
    return persona if isinstance(persona, str) and persona in known else OTHER


def in_graph(id_type: str) -> bool:
    """Does the identity graph link customers on identifiers of this type?"""
    return id_type in _TYPES
