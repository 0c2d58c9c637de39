"""Splitting a customer (unmerge), as pure rules: which identifiers go, which touchpoints follow them.

A customer's identity graph is the hypergraph of its recorded links (core/identity.py ``Evidence``: every
event that minted, linked or merged into it, with the identifiers it came with). Given identifiers to
separate (``separate``), or a merge to undo (``separated_by_merge``):

1. the links are taken without the separated identifiers; what is still connected to the customer's anchor
   (the identifier it was minted from, else its oldest link) stays, everything else goes with the
   separated identifiers: an identifier attached only through them leaves with them;
2. the side holding the identifier the customer id was minted from keeps the id; the other side gets the
   id its strongest identifier mints (a first-seen event would have minted the same), or a derived one;
3. each link goes to the side whose identifiers it names (a link naming both stays on both, it is the
   evidence of the wrong merge); each side's counts and first seen are rebuilt from its own;
4. each touchpoint goes to the side of its event's strongest identifier (``ik``, its identifiers' refs);
   one written before touchpoints kept refs stays.

The two customers are then kept apart: identity.lua refuses to merge them again (``blocked``) until an
admin allows it or undoes the split, which merges them back. ``adapters/split_store.py`` applies a plan in
Redis, ``core.model.StitchModel.split`` in memory; both use the functions here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from msgspec import Struct

from services.stitcher.core.hashed_identifiers import key_ref
from services.stitcher.core.identifiers import STRENGTH, mint_customer_id
from services.stitcher.core.identity import Evidence, id_type_of
from services.stitcher.core.stitch import record_id

SPLIT_RECORD_VERSION = "1.2"  # identity_merge.v1.2: the 'split' object


class SplitRefused(ValueError):
    """The split asked for cannot be made (the message says why, without an identifier's value)."""


class SplitPlan(Struct, frozen=True):
    """What a split writes: the customer keeps ``keep``, ``new_customer`` gets ``move``."""

    split_id: str
    customer: str
    new_customer: str
    separated: tuple[str, ...]  # the identifiers asked for (sorted)
    keep: tuple[str, ...]  # sorted
    move: tuple[str, ...]  # sorted
    keep_evidence: dict[str, str]  # event id -> Evidence text
    move_evidence: dict[str, str]
    keep_first_seen_ms: int
    move_first_seen_ms: int
    ids_digest: str  # of the customer's identifiers when planned: the write is refused if they changed


def ids_digest(ids: Iterable[str]) -> str:
    """SHA-1 of the sorted identifier keys joined by ',' (split.lua computes the same over its set)."""
    return hashlib.sha1(",".join(sorted(ids)).encode()).hexdigest()


def split_id(customer: str, separated: Iterable[str]) -> str:
    """Deterministic: the same split asked again (after a crash) finds its record."""
    return "s_" + hashlib.sha256(f"{customer}|{','.join(sorted(separated))}".encode()).hexdigest()[:16]


def derived_id(split: str) -> str:
    """The new customer's id when the minted one is taken by someone else."""
    return "c_" + hashlib.sha256(f"split|{split}".encode()).hexdigest()[:16]


def strongest_key(keys: Iterable[str]) -> str:
    return min(keys, key=lambda k: (STRENGTH.index(id_type_of(k)), k))


def counts(keys: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in keys:
        t = id_type_of(k)
        out[t] = out.get(t, 0) + 1
    return out


def _components(nodes: set[str], edges: Iterable[Sequence[str]]) -> dict[str, str]:
    parent = {n: n for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for edge in edges:
        inside = [k for k in edge if k in parent]
        for k in inside[1:]:
            a, b = find(inside[0]), find(k)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {n: find(n) for n in nodes}


def _ordered(evidence: Mapping[str, Evidence]) -> list[tuple[str, Evidence]]:
    return sorted(evidence.items(), key=lambda kv: (kv[1].occurred_ms, kv[0]))


def separated_by_merge(
    customer: str, ids: set[str], evidence: Mapping[str, Evidence], event_id: str, loser: str
) -> set[str]:
    """The identifiers a merge (its event and loser, as the merge record names them) brought in: the
    component of the loser's minting identifier once that event's link is left out."""
    if event_id not in evidence or evidence[event_id].rule != "merge":
        raise SplitRefused("no merge by that event is recorded for this customer")
    comp = _components(ids, (e.named() for eid, e in evidence.items() if eid != event_id))
    roots = {comp[k] for k in ids if mint_customer_id(k) == loser}
    if not roots:
        raise SplitRefused("the merged-away customer's minting identifier is no longer part of this customer")
    mine = {comp[k] for k in ids if mint_customer_id(k) == customer}
    if roots & mine:
        raise SplitRefused("other events link the two as well: name the identifiers to separate")
    return {k for k in ids if comp[k] in roots}


def plan_split(
    customer: str,
    ids: set[str],
    evidence: Mapping[str, Evidence],
    separate: set[str],
    first_seen_ms: int,
    taken: Iterable[str] = (),
) -> SplitPlan:
    """The plan of separating ``separate`` from ``customer`` (its identifiers ``ids``, recorded links
    ``evidence``). ``taken``: customer ids that may not be the new one (live customers elsewhere)."""
    if not separate:
        raise SplitRefused("name at least one identifier to separate")
    if not separate <= ids:
        raise SplitRefused(f"{len(separate - ids)} of the identifiers named are not part of this customer")
    if separate == ids:
        raise SplitRefused("nothing would be left: the identifiers named are all of this customer's")
    rest = ids - separate
    comp = _components(rest, (e.named() for e in evidence.values()))
    minted = [k for k in rest if mint_customer_id(k) == customer]
    anchor = (
        minted[0]
        if minted
        else next((k for _, e in _ordered(evidence) for k in e.named() if k in rest), min(rest))
    )
    stay = {k for k in rest if comp[k] == comp[anchor]}
    go = ids - stay
    if any(mint_customer_id(k) == customer for k in go):  # the customer id goes with its minting identifier
        stay, go = go, stay
    sid = split_id(customer, separate)
    new = mint_customer_id(strongest_key(go))
    if new == customer or new in set(taken):
        new = derived_id(sid)
    keep_ev: dict[str, str] = {}
    move_ev: dict[str, str] = {}
    for eid, e in evidence.items():
        named = set(e.named())
        if named & go:
            move_ev[eid] = e.text()
        if named & stay or not named & go:
            keep_ev[eid] = e.text()
    return SplitPlan(
        sid,
        customer,
        new,
        tuple(sorted(separate)),
        tuple(sorted(stay)),
        tuple(sorted(go)),
        keep_ev,
        move_ev,
        _first_seen(keep_ev, first_seen_ms),
        _first_seen(move_ev, first_seen_ms),
        ids_digest(ids),
    )


def _first_seen(evidence: Mapping[str, str], default: int) -> int:
    return min((Evidence.parse(t).occurred_ms for t in evidence.values()), default=default)


def moves(touchpoint: bytes, move_refs: set[str], keep_refs: set[str]) -> bool:
    """Does this stored touchpoint go to the new customer? By its event's strongest identifier that is on
    either side; a touchpoint without refs (written before they were kept) stays."""
    refs = orjson.loads(touchpoint).get("ik") or ()
    known = [r for r in refs if r in move_refs or r in keep_refs]
    return bool(known) and strongest_key(known) in move_refs


def refs(keys: Iterable[str]) -> set[str]:
    return {key_ref(k) for k in keys}


def split_merge_record(rec: Mapping[str, Any], action: str, now_ms: int) -> dict[str, Any]:
    """The identity_merge 1.2 record of a split (kind conflict, limit 'split': the two are kept apart) or of
    its undo (kind merge: a reader that knows nothing of splits folds it like any merge). The record id
    is derived from the split, its generation and the action, so a repeat publishes the same record."""
    sid, gen = str(rec["split_id"]), str(rec.get("generation", 1))
    kind = "conflict" if action == "split" else "merge"
    out: dict[str, Any] = {
        "schema_version": SPLIT_RECORD_VERSION,
        "record_id": record_id(
            f"{kind}:{action}:{sid}:{gen}", str(rec["customer"]), str(rec["new_customer"])
        ),
        "kind": kind,
        "survivor": rec["customer"],
        "loser": rec["new_customer"],
        "event_id": sid,
        "identifier_types": list(rec.get("identifier_types") or []),
        "recorded_at_ms": now_ms,
        "split": {
            "split_id": sid,
            "action": action,
            "by": str(rec.get("undone_by" if action == "undo" else "by") or ""),
        },
    }
    if action == "split":
        out["limit"] = "split"
    return out
