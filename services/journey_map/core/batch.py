"""A batch of inputs applied to the customers they touch: new states and the map's deltas. Pure.

The adapter loads the stored state of every customer a batch names (and of every survivor a tombstone
points to), calls ``apply``, then writes each changed state with its customer's delta in one script per
shard, compare-and-set on the state's generation: a batch that lost a race is planned again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.common.limits import MAX_ALIAS_HOPS
from services.journey_map.core.bounds import Bounds
from services.journey_map.core.contribution import Contribution, Delta, contribution, with_customer
from services.journey_map.core.state import (
    Alert,
    CustomerState,
    Ev,
    add_alert,
    add_event,
    decode,
    encode,
    fold,
    tombstone,
)

# Tombstones mirror the stitcher's alias chains (merge records), so they are followed as far as any alias
# chain is (services/common/limits.py); chains are short (the stitcher compresses them), more means a cycle.
MAX_HOPS = MAX_ALIAS_HOPS


@dataclass(frozen=True, slots=True)
class EventIn:
    cid: str
    ev: Ev


@dataclass(frozen=True, slots=True)
class AlertIn:
    cid: str
    alert: Alert


@dataclass(frozen=True, slots=True)
class MergeIn:
    survivor: str
    loser: str


Input = EventIn | AlertIn | MergeIn


@dataclass
class Outcome:
    states: dict[str, bytes] = field(default_factory=dict)  # customer -> new encoded state (changed only)
    deltas: dict[str, Delta] = field(default_factory=dict)  # customer -> what its change does to the map


def names(inputs: Iterable[Input]) -> set[str]:
    """Every customer id the inputs name."""
    found: set[str] = set()
    for item in inputs:
        if isinstance(item, MergeIn):
            found |= {item.survivor, item.loser}
        else:
            found.add(item.cid)
    return found


def missing_targets(loaded: Mapping[str, bytes | None]) -> set[str]:
    """Survivors that loaded tombstones point to and that are not loaded yet."""
    targets = {s.into for s in (decode(raw) for raw in loaded.values()) if s.into is not None}
    return targets - set(loaded)


def erase(cids: Iterable[str], loaded: Mapping[str, bytes | None], bounds: Bounds) -> Outcome:
    """Forget these customers (a survivor and the ids merged into it): their states go (an empty state
    deletes the key) and their contribution is taken back from the counters, the pain points included.
    What remains are counts no one can be traced back to."""
    out = Outcome()
    for cid in sorted(set(cids)):
        raw = loaded.get(cid)
        if raw is None:
            continue
        delta = Delta()
        delta.merge(with_customer(contribution(decode(raw), bounds), cid), Contribution())
        out.states[cid] = b""
        out.deltas[cid] = delta
    return out


def apply(inputs: Iterable[Input], loaded: Mapping[str, bytes | None], bounds: Bounds) -> Outcome:
    """Apply the inputs in order. ``loaded`` holds every named customer's stored state (None: none yet)
    and the survivors their tombstones name (``missing_targets`` says which are still needed)."""
    states = {cid: decode(raw) for cid, raw in loaded.items()}
    changed: set[str] = set()

    def resolve(cid: str) -> str:
        for _ in range(MAX_HOPS):
            state = states.setdefault(cid, CustomerState())
            if state.into is None or state.into == cid:
                return cid
            cid = state.into
        return cid

    for item in inputs:
        if isinstance(item, EventIn):
            cid = resolve(item.cid)
            if add_event(states[cid], item.ev):
                changed.add(cid)
        elif isinstance(item, AlertIn):
            cid = resolve(item.cid)
            if add_alert(states[cid], item.alert):
                changed.add(cid)
        else:
            survivor, loser = resolve(item.survivor), resolve(item.loser)
            if survivor != loser:
                fold(states[survivor], states[loser])
                states[loser] = tombstone(survivor, states[loser])
                changed |= {survivor, loser}
            elif fold(states[survivor], states[item.loser]):
                # Merged before, but the survivor lacks what the tombstone holds: its write was lost
                # (a crash between the two customers' scripts); the redelivered merge completes it.
                changed.add(survivor)
    out = Outcome()
    for cid in sorted(changed):
        delta = Delta()
        delta.merge(
            with_customer(contribution(decode(loaded.get(cid)), bounds), cid),
            with_customer(contribution(states[cid], bounds), cid),
        )
        out.states[cid] = encode(states[cid])
        out.deltas[cid] = delta
    return out
