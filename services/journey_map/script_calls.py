"""The journey map's Lua script call as a typed signature (services/common/script_args.py): the KEYS and
ARGV of lua/apply.lua, in the order its header documents them."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.script_args import Signature


@dataclass(frozen=True, slots=True)
class ApplyCall(Signature):
    """lua/apply.lua: one shard's changed customer states and their map deltas, compare-and-set."""

    PACKAGE = "services.journey_map"
    SCRIPT = "lua/apply.lua"
    KEYS = ("now_key",)
    ARGV = (
        "stem",
        "minute_ttl_ms",
        "hour_ttl_ms",
        "state_ttl_ms",
        "pain_members",
        "minutes_kept",
        "hours_kept",
        "payload",
    )

    now_key: str  # the shard's 'now' hash: every key of the call is in its slot
    stem: str  # '<prefix>:{<prefix>:map:<n>}:'
    minute_ttl_ms: int
    hour_ttl_ms: int
    state_ttl_ms: int
    pain_members: int  # most members per pain point
    minutes_kept: int  # most minutes kept in the minute index
    hours_kept: int  # most hours kept in the hour index
    payload: bytes  # JSON, see apply.lua
