"""What erasing one customer removes, and in which steps. Pure: the adapter (services/api/erase.py) runs the
plan.

On Redis Cluster no transaction or script may span hash slots, so an erasure is a list of steps, each in one
slot (the identity graph's, the timer wheel's, the recent alerts', each customer's own). Every step is safe
to repeat, and the identity graph's entries of the customers (their ids, aliases both ways) go last: until
that step has run, a repeated erasure finds every alias and key again, so a crash in between leaves
nothing behind for good. On a single Redis the adapter runs all steps in one MULTI/EXEC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.common.keys import Keys

# Deletes an identifier key only while it still points at one of the erased ids: an identifier the
# stitcher re-linked to someone else in the meantime is not ours to delete. Key names come in KEYS.
DELETE_IF_OWNED = """#!lua
local n = 0
for _, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner then
    for i = 1, #ARGV do
      if owner == ARGV[i] then redis.call('DEL', key); n = n + 1; break end
    end
  end
end
return n
"""


@dataclass(frozen=True)
class Command:
    """One Redis command as a pipeline method and its arguments; ``counts`` names the report field its
    integer reply adds to ("keys" for keys deleted), or is empty."""

    method: str
    args: tuple[Any, ...]
    counts: str = ""


@dataclass
class Step:
    """Commands that all touch keys of one hash slot (that of ``slot_key``)."""

    slot_key: str
    commands: list[Command] = field(default_factory=list)


def graph_keys(keys: Keys, cids: Iterable[str]) -> list[str]:
    """The identity graph's entries of these customer ids: their hash, id set, aliases (both directions),
    the evidence of their links and the customers a split keeps them from."""
    out: list[str] = []
    for cid in sorted(set(cids)):
        out += [
            keys.customer(cid),
            keys.customer_ids(cid),
            keys.alias(cid),
            keys.aliases_of(cid),
            keys.evidence(cid),
            keys.blocked(cid),
        ]
    return out


def customer_keys(keys: Keys, cids: Iterable[str]) -> list[str]:
    """Every key owned by these customer ids: identity-graph entries, aliases (both directions) and
    the per-customer keys of every service (``Keys.customer_scoped``)."""
    out: list[str] = []
    for cid in sorted(set(cids)):
        out += graph_keys(keys, [cid]) + keys.customer_scoped(cid)
    return out


def existence_probes(keys: Keys, cids: Iterable[str]) -> list[str]:
    """Keys whose existence means the customer is known (and so can be erased rather than 404)."""
    out: list[str] = []
    for cid in sorted(set(cids)):
        out += [
            keys.customer(cid),
            keys.customer_ids(cid),
            keys.alias(cid),
            keys.timeline(cid),
            keys.summary(cid),
            keys.masked(cid),
            keys.open_alerts(cid),
            keys.detector_state(cid),
        ]
    return out


def erase_steps(
    keys: Keys,
    cids: Iterable[str],
    *,
    id_keys: Sequence[str],
    outcome_keys: Sequence[str],
    timers: Mapping[str, Sequence[bytes]],
    alert_ids: Sequence[bytes],
) -> list[Step]:
    """The erasure of ``cids`` (a survivor and every id merged into it) as single-slot steps, in order.

    Merge outcomes (found through the timelines) and identifier keys (found through the id sets) go before
    the timelines and the id sets they are found through; the graph's entries last of all."""
    ids = sorted(set(cids))
    steps: list[Step] = []
    graph = Step(keys.idg)
    if outcome_keys:
        graph.commands.append(Command("delete", tuple(outcome_keys), "keys"))
    if id_keys:
        graph.commands.append(Command("eval", (DELETE_IF_OWNED, len(id_keys), *id_keys, *ids), "identifiers"))
    steps.append(graph)
    wheel = Step(keys.timers)
    for zset, members in timers.items():
        if members:
            wheel.commands.append(Command("zrem", (zset, *members)))
    steps.append(wheel)
    if alert_ids:
        steps.append(
            Step(
                keys.alerts_by_id,
                [
                    Command("hdel", (keys.alerts_by_id, *alert_ids)),
                    Command("zrem", (keys.recent_alerts, *alert_ids)),
                ],
            )
        )
    for cid in ids:
        steps.append(Step(keys.timeline(cid), [Command("delete", tuple(keys.customer_scoped(cid)), "keys")]))
    # After the handling hashes (customer_scoped) are gone: the index never names a customer that lost them.
    members = tuple(c.encode() for c in ids)  # bytes: members, not keys
    steps.append(Step(keys.handled_customers, [Command("srem", (keys.handled_customers, *members))]))
    steps.append(Step(keys.idg, [Command("delete", tuple(graph_keys(keys, ids)), "keys")]))
    return [s for s in steps if s.commands]
