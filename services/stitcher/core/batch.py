"""The pure steps around the two Redis scripts: prepare a batch for identity resolution, then turn the
script's resolutions into outgoing stitched events and merge records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from services.stitcher.core.decode import DecodePolicy, Rejected, decode
from services.stitcher.core.identity import Resolution
from services.stitcher.core.stitch import Ident, IdentifierHasher, merge_record, mint_for, stitched_event


@dataclass(frozen=True, slots=True)
class Raw:
    """One consumed record, with where it came from (for the dead-letter headers)."""

    value: bytes | None
    key: bytes | None
    headers: dict[str, bytes]
    topic: str = ""
    partition: int = -1
    offset: int = -1
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True)
class Prepared:
    raw: Raw
    event: dict[str, Any]
    occurred_ms: int
    idents: list[Ident]
    mint: str


@dataclass
class Split:
    ready: list[Prepared] = field(default_factory=list)
    rejected: list[tuple[Raw, Rejected]] = field(default_factory=list)


def prepare(records: Sequence[Raw], hasher: IdentifierHasher, now_ms: int, policy: DecodePolicy) -> Split:
    """Decode and validate a batch; events without a usable identifier are rejected as no_identifier."""
    out = Split()
    for raw in records:
        result = decode(raw.value, raw.headers, now_ms, policy)
        if isinstance(result, Rejected):
            out.rejected.append((raw, result))
            continue
        idents = hasher.usable(result.event["identifiers"])
        if not idents:
            out.rejected.append((raw, Rejected("no_identifier", "every identifier is junk or unusable")))
            continue
        out.ready.append(Prepared(raw, result.event, result.occurred_ms, idents, mint_for(idents)))
    return out


@dataclass
class Outputs:
    stitched: list[dict[str, Any]] = field(default_factory=list)
    merges: list[dict[str, Any]] = field(default_factory=list)
    conflict_types: list[str] = field(default_factory=list)
    merge_count: int = 0


def outputs(ready: Sequence[Prepared], resolutions: Sequence[Resolution], now_ms: int) -> Outputs:
    """Stitched events and identity-merge records for a resolved batch."""
    out = Outputs()
    for prep, res in zip(ready, resolutions, strict=True):
        out.stitched.append(stitched_event(prep.event, prep.occurred_ms, res.customer_id, prep.idents,
                                           bool(res.conflict_types), now_ms))
        out.conflict_types.extend(res.conflict_types)
        for o in res.outcomes:
            out.merges.append(merge_record(o.kind, o.survivor, o.loser, prep.event["event_id"],
                                           list(o.identifier_types), o.limit, prep.occurred_ms, now_ms))
            out.merge_count += o.kind == "merge"
    return out
