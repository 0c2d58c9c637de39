"""Selecting recent alerts for GET /api/v1/alerts and finding a customer's alerts for erasure. Pure."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import orjson

from services.api.core.journey import instant_ms, valid_alerts
from services.api.core.queries import AlertFilter


def select_alerts(
    raw_alerts: Iterable[bytes], flt: AlertFilter, customer_ids: Collection[str] | None
) -> list[dict[str, Any]]:
    """Alerts passing the filter, newest detection first, at most ``flt.limit``.

    ``customer_ids`` is the customer and the ids merged into it: an alert keeps the id it was raised under.
    """
    out = []
    for alert in valid_alerts(raw_alerts):
        if flt.types is not None and alert["type"] not in flt.types:
            continue
        if customer_ids is not None and alert.get("customer_id") not in customer_ids:
            continue
        if flt.persona is not None and alert.get("persona") != flt.persona:  # gap_alert 1.2 carries it
            continue
        out.append(alert)
    out.sort(key=lambda a: (instant_ms(a["detected_at"]), a["alert_id"]), reverse=True)
    return out[: flt.limit]


def belongs_to(raw_alert: bytes, customer_ids: Collection[str]) -> bool:
    """Whether a stored alert was raised for one of these customer ids (unreadable ones are not)."""
    try:
        alert = orjson.loads(raw_alert)
    except orjson.JSONDecodeError:
        return False
    return isinstance(alert, dict) and alert.get("customer_id") in customer_ids


def timer_belongs_to(member: bytes, customer_ids: Collection[str]) -> bool:
    """Timer members are '<cid>|<journey_type>'."""
    return member.split(b"|", 1)[0].decode(errors="replace") in customer_ids
