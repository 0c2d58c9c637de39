"""Parameters of GET /api/v1/journey-map and /api/v1/journey-map/customers. Pure: a bad value raises
BadRequest with a reason for the 400 (naming the parameter, never echoing its value)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from services.api.core.queries import BadRequest, _time_ms
from services.journey_map.core.bounds import ALERT_TYPES, OTHER, Bounds
from services.journey_map.core.document import MapQuery

DAY_MS = 86_400_000
DEFAULT_WINDOW_MS = 7 * DAY_MS
MAX_WINDOW_MS = 400 * DAY_MS
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_CUSTOMERS = 200


def _choice(query: Mapping[str, str], name: str, allowed: set[str] | frozenset[str]) -> str | None:
    if name not in query or query[name] in ("", "all"):
        return None
    value = query[name]
    if value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(sorted(allowed))[:300]}")
    return value


def map_query(query: Mapping[str, str], bounds: Bounds, now_ms: int) -> MapQuery:
    """journey (default: the first defined), persona, channel (absent or 'all': every one), since/until
    (RFC 3339 or epoch ms; default the last 7 days up to now)."""
    unknown = sorted(set(query) - {"journey", "persona", "channel", "since", "until"})
    if unknown:
        raise BadRequest(f"unknown parameter(s): {', '.join(unknown)[:200]}")
    journeys = set(bounds.stages)
    journey = _choice(query, "journey", journeys) or min(journeys - {OTHER}, default=OTHER)
    persona = _choice(query, "persona", bounds.personas | {OTHER})
    channel = _choice(query, "channel", bounds.channels)
    until = _time_ms("until", query["until"]) if "until" in query else now_ms
    since = _time_ms("since", query["since"]) if "since" in query else until - DEFAULT_WINDOW_MS
    if since >= until:
        raise BadRequest("since must be before until")
    if until - since > MAX_WINDOW_MS:
        raise BadRequest("the window (since to until) is at most 400 days")
    return MapQuery(journey, persona, channel, since, until)


def customers_query(query: Mapping[str, str], bounds: Bounds) -> tuple[str, str, str, str | None, int]:
    """(journey, stage, alert type, persona or None, limit) of a pain point's customer list."""
    unknown = sorted(set(query) - {"journey", "stage", "type", "persona", "limit"})
    if unknown:
        raise BadRequest(f"unknown parameter(s): {', '.join(unknown)[:200]}")
    journey = _choice(query, "journey", set(bounds.stages))
    if journey is None:
        raise BadRequest("journey is required")
    stage = _choice(query, "stage", set(bounds.stages[journey]) | {OTHER})
    kind = _choice(query, "type", set(ALERT_TYPES))
    if stage is None or kind is None:
        raise BadRequest("stage and type are required")
    persona = _choice(query, "persona", bounds.personas | {OTHER})
    limit = 50
    if "limit" in query:
        text = query["limit"]
        if not text.isdigit() or not 1 <= int(text) <= MAX_CUSTOMERS:
            raise BadRequest(f"limit must be an integer from 1 to {MAX_CUSTOMERS}")
        limit = int(text)
    return journey, stage, kind, persona, limit
