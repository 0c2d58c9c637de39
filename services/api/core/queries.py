"""Validation of request parameters. Pure: a bad value raises BadRequest with a reason for the 400.

Reasons name the parameter, never echo its value: a mistyped phone number is still personal data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from services.common.timeutil import parse_rfc3339_ms

LOOKUP_TYPES = ("phone", "email", "customer_id", "account_id", "device_id", "cookie_id", "loyalty_id")
ALERT_TYPES = frozenset(
    {"channel_switch", "device_switch", "department_handoff", "repeat_contact", "stall", "dropoff_spike"}
)
CUSTOMER_ID = re.compile(r"^c_[0-9a-f]{8,64}$")
PERSONA = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_IDENTIFIER_LEN = 256
MAX_ALERTS_LIMIT = 1000


class BadRequest(ValueError):
    """The request is malformed; the message is the reason returned with the 400."""


def lookup_param(query: Mapping[str, str]) -> tuple[str, str]:
    """The single (identifier type, raw value) of a lookup query."""
    unknown = sorted(set(query) - set(LOOKUP_TYPES))
    if unknown:
        raise BadRequest(
            f"unknown parameter(s): {', '.join(unknown)[:200]}; use one of {', '.join(LOOKUP_TYPES)}"
        )
    given = [(t, query[t]) for t in LOOKUP_TYPES if t in query]
    if len(given) != 1 or len(query.keys()) != 1:
        raise BadRequest(f"give exactly one identifier: one of {', '.join(LOOKUP_TYPES)}")
    id_type, raw = given[0]
    if not raw.strip():
        raise BadRequest(f"{id_type} is empty")
    if len(raw) > MAX_IDENTIFIER_LEN:
        raise BadRequest(f"{id_type} is longer than {MAX_IDENTIFIER_LEN} characters")
    return id_type, raw


def customer_id(value: str) -> str:
    """A stitched customer id ('c_' + hex)."""
    if not CUSTOMER_ID.match(value):
        raise BadRequest("customer_id must look like c_ followed by 8-64 lowercase hex digits")
    return value


def _time_ms(name: str, value: str) -> int:
    if value.isdigit() and len(value) <= 16:
        return int(value)
    try:
        return parse_rfc3339_ms(value)
    except (ValueError, OverflowError):
        raise BadRequest(
            f"{name} must be RFC 3339 with an offset (2026-11-23T10:00:00Z) or epoch ms"
        ) from None


@dataclass(frozen=True)
class AlertFilter:
    types: frozenset[str] | None = None
    customer_id: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 100
    persona: str | None = None


def alert_filter(query: Mapping[str, str], *, default_limit: int) -> AlertFilter:
    """Filters of GET /api/v1/alerts: type (comma separated), customer_id, persona, since, until, limit."""
    unknown = sorted(set(query) - {"type", "customer_id", "persona", "since", "until", "limit"})
    if unknown:
        raise BadRequest(f"unknown parameter(s): {', '.join(unknown)[:200]}")
    types = None
    if "type" in query:
        types = frozenset(t.strip() for t in query["type"].split(",") if t.strip())
        if not types or not types <= ALERT_TYPES:
            raise BadRequest(f"type must be one or more of {', '.join(sorted(ALERT_TYPES))}")
    cid = customer_id(query["customer_id"]) if "customer_id" in query else None
    since = _time_ms("since", query["since"]) if "since" in query else None
    until = _time_ms("until", query["until"]) if "until" in query else None
    if since is not None and until is not None and since > until:
        raise BadRequest("since is after until")
    limit = default_limit
    if "limit" in query:
        text = query["limit"]
        if not text.isdigit() or not 1 <= int(text) <= MAX_ALERTS_LIMIT:
            raise BadRequest(f"limit must be an integer from 1 to {MAX_ALERTS_LIMIT}")
        limit = int(text)
    persona = query.get("persona")
    if persona is not None and not PERSONA.match(persona):
        raise BadRequest("persona must be 1-64 of a-z, 0-9 and _, starting with a letter")
    return AlertFilter(types, cid, since, until, min(limit, MAX_ALERTS_LIMIT), persona)
