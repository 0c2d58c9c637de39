"""What erasing one customer removes. Pure: the adapter (services/api/erase.py) runs the plan."""

from __future__ import annotations

from collections.abc import Iterable

from services.common.keys import Keys


def customer_keys(keys: Keys, cids: Iterable[str]) -> list[str]:
    """Every key owned by these customer ids: identity-graph entries, aliases (both directions) and
    the per-customer keys of every service (``Keys.customer_scoped``)."""
    out: list[str] = []
    for cid in sorted(set(cids)):
        out += [keys.customer(cid), keys.customer_ids(cid), keys.alias(cid), keys.aliases_of(cid)]
        out += keys.customer_scoped(cid)
    return out


def existence_probes(keys: Keys, cids: Iterable[str]) -> list[str]:
    """Keys whose existence means the customer is known (and so can be erased rather than 404)."""
    out: list[str] = []
    for cid in sorted(set(cids)):
        out += [keys.customer(cid), keys.customer_ids(cid), keys.alias(cid), keys.timeline(cid),
                keys.summary(cid), keys.masked(cid), keys.open_alerts(cid), keys.detector_state(cid)]
    return out
