"""Why is an identifier part of a customer: the recorded links (core/identity.py ``Evidence``) that connect
it to the customer's anchor (the identifier its id was minted from, else its oldest link), shortest first.
Pure; the API and ``journeys why`` show it with masked values only."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from services.stitcher.core.identifiers import mint_customer_id
from services.stitcher.core.identity import Evidence


def explain(
    customer: str, ids: set[str], evidence: Mapping[str, Evidence], key: str
) -> list[tuple[str, Evidence]]:
    """The links from the customer's anchor to ``key``, in that order ([] when ``key`` is not the
    customer's or no link names it: a graph written before links were recorded)."""
    if key not in ids:
        return []
    by_key: dict[str, list[str]] = {}
    for eid, e in evidence.items():
        for k in e.named():
            by_key.setdefault(k, []).append(eid)
    anchors = [k for k in ids if mint_customer_id(k) == customer and k in by_key]
    if not anchors:
        oldest = sorted(evidence.items(), key=lambda kv: (kv[1].occurred_ms, kv[0]))
        anchors = [k for _, e in oldest[:1] for k in e.named() if k in by_key]
    # Breadth first over identifiers, an event's link joining all the identifiers it names.
    came: dict[str, tuple[str, str] | None] = dict.fromkeys(anchors)
    todo = deque(anchors)
    while todo and key not in came:
        k = todo.popleft()
        for eid in sorted(by_key.get(k, ()), key=lambda x: (evidence[x].occurred_ms, x)):
            for nxt in evidence[eid].named():
                if nxt not in came:
                    came[nxt] = (k, eid)
                    todo.append(nxt)
    if key not in came:
        return []
    path: list[tuple[str, Evidence]] = []
    at = key
    first = next((eid for eid in sorted(by_key[key], key=lambda x: (evidence[x].occurred_ms, x))), None)
    while came[at] is not None:
        prev, eid = came[at]  # type: ignore[misc]
        path.append((eid, evidence[eid]))
        at = prev
    if not path and first is not None:  # the anchor itself: the link that brought it
        path.append((first, evidence[first]))
    return path[::-1]
