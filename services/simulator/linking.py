"""Identity bookkeeping for the ground truth: is each customer's identity graph connected, and which
merges must a stitcher make given the arrival order.

Identifier values are compared in a light canonical form (lower case, phone digits) — enough for
the simulator's own values, which are unique per customer by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import phonenumbers

from services.simulator.identities import JUNK

_JUNK = {(t, v.lower()) for t, vs in JUNK.items() for v in vs}


def canon(id_type: str, value: str) -> str | None:
    """A comparable form of a simulator identifier; None for the junk ones."""
    if (id_type, value.lower()) in _JUNK:
        return None
    if id_type == "phone":
        number = phonenumbers.parse(value, "GB")
        return "phone:" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return f"{id_type}:{value.lower().lstrip('@')}"


def id_keys(event: Mapping[str, Any]) -> list[str]:
    out = []
    for id_type, value in (event.get("identifiers") or {}).items():
        c = canon(id_type, value)
        if c is not None:
            out.append(c)
    return out


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True


def components(events: Iterable[Mapping[str, Any]]) -> list[set[str]]:
    """The connected identifier groups of a set of events."""
    uf = UnionFind()
    for ev in events:
        keys = id_keys(ev)
        for k in keys:
            uf.find(k)
        for k in keys[1:]:
            uf.union(keys[0], k)
    groups: dict[str, set[str]] = {}
    for k in list(uf.parent):
        groups.setdefault(uf.find(k), set()).add(k)
    return list(groups.values())


def expected_merges(arrivals: Iterable[tuple[Mapping[str, Any], str]]) -> list[dict[str, Any]]:
    """Replay the arrival order: an event whose identifiers span two already-known groups makes the
    stitcher merge them. ``arrivals`` yields (event, true customer) in arrival order."""
    uf = UnionFind()
    seen: set[str] = set()
    merges: list[dict[str, Any]] = []
    for ev, customer in arrivals:
        keys = id_keys(ev)
        known = [k for k in keys if k in seen]
        roots = {uf.find(k) for k in known}
        if len(roots) > 1:
            merges.append(
                {
                    "customer": customer,
                    "event_id": ev["event_id"],
                    "groups": len(roots),
                    "identifier_types": sorted({k.split(":", 1)[0] for k in known}),
                }
            )
        for k in keys:
            seen.add(k)
            uf.union(keys[0], k)
    return merges


def _device_key(ev: Mapping[str, Any]) -> str | None:
    ids = ev.get("identifiers") or {}
    return ids.get("device_id") or ids.get("cookie_id")


def _relevant(ev: Mapping[str, Any]) -> bool:
    """Events the per-key rules and stalls read: they must be stitched to the customer on arrival."""
    return bool(ev.get("journey") or ev.get("intent") or ev.get("department"))


def link_on_arrival(
    events: list[dict[str, Any]], account_id: str, device_window_ms: int, time_of: Any
) -> None:
    """Add the account id to the events that need it so that a stitcher reading them in time order can
    already see every link a rule depends on: events with a journey key or department join the account's
    group on arrival, and so does any device switch within the window. What is left separate is
    anonymous browsing, which merges later (a real merge) without any rule having looked at it alone.

    Without this, the oracle (which sees final identities) and any online detector would disagree by
    construction, e.g. a stall firing under a phone number that only days later proves to be the
    customer who had long moved on."""
    account = canon("account_id", account_id)
    assert account is not None
    uf = UnionFind()
    last_device: dict[str, Any] | None = None
    for ev in sorted(events, key=time_of):
        keys = id_keys(ev)
        for k in keys[1:]:
            uf.union(keys[0], k)
        dk = _device_key(ev)
        need = _relevant(ev)
        if (
            dk is not None
            and last_device is not None
            and _device_key(last_device) != dk
            and time_of(ev) - time_of(last_device) <= device_window_ms
            and uf.find(id_keys(last_device)[0]) != uf.find(keys[0])
        ):
            # A device switch the rules will look at: both ends must be the customer's already.
            last_device["identifiers"]["account_id"] = account_id
            uf.union(id_keys(last_device)[0], account)
            need = True
        if need and uf.find(keys[0]) != uf.find(account):
            ev["identifiers"]["account_id"] = account_id
            uf.union(keys[0], account)
        if dk is not None:
            last_device = ev


def linking_events(events: list[dict[str, Any]], time_of: Any) -> set[str]:
    """Events that introduce an identifier or join two groups (in time order). Delivering one of them
    late would change who later events belong to on arrival, so the noise never delays them."""
    uf = UnionFind()
    seen: set[str] = set()
    out: set[str] = set()
    for ev in sorted(events, key=time_of):
        keys = id_keys(ev)
        if any(k not in seen for k in keys) or len({uf.find(k) for k in keys}) > 1:
            out.add(ev["event_id"])
        for k in keys:
            seen.add(k)
            uf.union(keys[0], k)
    return out
