"""The detector's Lua script calls as typed signatures (services/common/script_args.py): each names the
KEYS and ARGV of one script in lua/, in the order its header documents them. Optional values the scripts
read as '' ("none") are ``None`` here (the signature sends them as '')."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.script_args import Signature

_PACKAGE = "services.gap_detector"


@dataclass(frozen=True, slots=True)
class ResolveCall(Signature):
    """lua/resolve.lua: a batch's customers to their survivors and merged-away customers (graph's slot)."""

    PACKAGE = _PACKAGE
    SCRIPT = "lua/resolve.lua"
    KEYS = ("graph_key",)
    ARGV = ("alias_template", "aliases_of_template", "asks", "max_alias_hops", "max_losers")

    graph_key: str  # a key of the identity graph's hash slot
    alias_template: str
    aliases_of_template: str
    asks: bytes  # MessagePack list of [customer id, extra loser or '']
    max_alias_hops: int  # services/common/limits.py
    max_losers: int  # services/common/limits.py MAX_LOSERS_PER_LOAD


@dataclass(frozen=True, slots=True)
class LoadCall(Signature):
    """lua/load.lua: the detector state of customers sharing one hash slot."""

    PACKAGE = _PACKAGE
    SCRIPT = "lua/load.lua"
    KEYS = ("first_state",)
    ARGV = ("state_template", "open_alerts_template", "reads")

    first_state: str  # the state hash of the group's first customer
    state_template: str
    open_alerts_template: str
    reads: bytes  # MessagePack list of [id, cached token or '', 1 to read open alerts]


@dataclass(frozen=True, slots=True)
class ApplyCall(Signature):
    """lua/apply.lua: writes that share one hash slot, in one atomic call."""

    PACKAGE = _PACKAGE
    SCRIPT = "lua/apply.lua"
    KEYS = ("slot_key",)
    ARGV = ("operations",)

    slot_key: str
    operations: bytes  # MessagePack list of [command, key, args...]


@dataclass(frozen=True, slots=True)
class ClaimOutboxCall(Signature):
    """lua/claim_outbox.lua: lease alerts left in the outboxes."""

    PACKAGE = _PACKAGE
    SCRIPT = "lua/claim_outbox.lua"
    KEYS = ("outbox_index",)
    ARGV = ("now_ms", "lease_ms", "limit")

    outbox_index: str
    now_ms: int
    lease_ms: int
    limit: int


@dataclass(frozen=True, slots=True)
class ClaimTimersCall(Signature):
    """lua/claim_timers.lua: lease due stall timers."""

    PACKAGE = _PACKAGE
    SCRIPT = "lua/claim_timers.lua"
    KEYS = ("timers", "inflight")
    ARGV = ("watermark_ms", "now_ms", "lease_ms", "limit")

    timers: str
    inflight: str
    watermark_ms: int
    now_ms: int
    lease_ms: int
    limit: int


@dataclass(frozen=True, slots=True)
class ClaimMinutesCall(Signature):
    """lua/claim_minutes.lua: take the drop-off cells ready to judge."""

    PACKAGE = _PACKAGE
    SCRIPT = "lua/claim_minutes.lua"
    KEYS = ("pending", "judged")
    ARGV = ("newest_minute", "limit")

    pending: str
    judged: str
    newest_minute: int
    limit: int


@dataclass(frozen=True, slots=True)
class ClockReadCall(Signature):
    """lua/clock_read.lua: store this worker's seen-through times, read everyone's and the watermark."""

    PACKAGE = _PACKAGE
    SCRIPT = "lua/clock_read.lua"
    KEYS = ("clock_seen", "clock_inputs", "watermark")
    ARGV = ("own_seen",)

    clock_seen: str
    clock_inputs: str
    watermark: str
    own_seen: list[str | int]  # ('<topic>:<partition>', seen-through ms) pairs, flat


@dataclass(frozen=True, slots=True)
class WatermarkAdvance(Signature):
    """lua/clock_advance.lua: one watermark update: queue ``candidate`` (when there is one) noted at
    ``noted_ms``, then apply the queued candidates the evidence (``evidence_ms``, when known) covers."""

    PACKAGE = _PACKAGE
    SCRIPT = "lua/clock_advance.lua"
    KEYS = ("pending", "watermark")
    ARGV = ("noted_ms", "candidate", "evidence_ms", "max_pending")

    pending: str
    watermark: str
    noted_ms: int
    candidate: int | None
    evidence_ms: int | None
    max_pending: int
