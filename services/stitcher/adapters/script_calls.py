"""The stitcher's Lua script calls as typed signatures (services/common/script_args.py): each names the
KEYS and ARGV of one script, in the order its header documents them; ``call()`` builds the lists."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.script_args import Signature

_PACKAGE = "services.stitcher.adapters"


@dataclass(frozen=True, slots=True)
class IdentityCall(Signature):
    """identity.lua: the batch's identity resolution in the graph's slot. The store keeps one with the
    fixed fields and ``dataclasses.replace``s the per-batch ones (keys, ``now_ms``, ``batch``)."""

    PACKAGE = _PACKAGE
    SCRIPT = "identity.lua"
    KEYS = ("identifier_keys", "outcome_keys")
    ARGV = (
        "id_head",
        "customer_head",
        "customer_ids_head",
        "alias_head",
        "aliases_of_head",
        "outcome_head",
        "now_ms",
        "outcome_ttl_ms",
        "graph_keep_ms",
        "graph_ttl_ms",
        "identifier_key_count",
        "max_alias_hops",
        "type_limits",
        "batch",
        "evidence_head",
        "blocked_head",
    )

    identifier_keys: list[str]
    outcome_keys: list[str]
    id_head: str
    customer_head: str
    customer_ids_head: str
    alias_head: str
    aliases_of_head: str
    outcome_head: str
    now_ms: int
    outcome_ttl_ms: int
    graph_keep_ms: int
    graph_ttl_ms: int
    max_alias_hops: int
    type_limits: tuple[str | int, ...]  # (identifier type, most identifiers of it per customer) x 8, flat
    batch: bytes  # MessagePack, see identity.lua
    evidence_head: str
    blocked_head: str

    @property
    def identifier_key_count(self) -> int:
        return len(self.identifier_keys)


@dataclass(frozen=True, slots=True)
class JourneyCall(Signature):
    """journey.lua: touchpoints written into the journeys of one slot group of customers."""

    PACKAGE = _PACKAGE
    SCRIPT = "journey.lua"
    KEYS = ("customer_keys",)
    ARGV = ("max_touchpoints", "keep_ms", "ttl_ms", "work", "touchpoints")

    customer_keys: list[str]  # per customer: timeline, touchpoints, summary, masks
    max_touchpoints: int
    keep_ms: int
    ttl_ms: int
    work: bytes  # MessagePack, see journey.lua
    touchpoints: list[bytes]


@dataclass(frozen=True, slots=True)
class TakeCall(Signature):
    """journey_take.lua: read a merged-away customer's journey."""

    PACKAGE = _PACKAGE
    SCRIPT = "journey_take.lua"
    KEYS = ("journey_keys",)

    journey_keys: list[str]  # timeline, touchpoints, summary, masks


@dataclass(frozen=True, slots=True)
class DropCall(Signature):
    """journey_drop.lua: remove the touchpoints journey_take.lua read, once folded."""

    PACKAGE = _PACKAGE
    SCRIPT = "journey_drop.lua"
    KEYS = ("journey_keys",)
    ARGV = ("event_ids",)

    journey_keys: list[str]  # timeline, touchpoints, summary, masks
    event_ids: list[str]


@dataclass(frozen=True, slots=True)
class CanonicalCall(Signature):
    """canonical.lua: which of these customers are merged away now, and into whom."""

    PACKAGE = _PACKAGE
    SCRIPT = "canonical.lua"
    KEYS = ("alias_keys",)
    ARGV = ("alias_head", "max_alias_hops")

    alias_keys: list[str]
    alias_head: str
    max_alias_hops: int


@dataclass(frozen=True, slots=True)
class ProgressCall(Signature):
    """progress.lua: a stitcher's evidence about its input partitions, merged into the clock hash."""

    PACKAGE = _PACKAGE
    SCRIPT = "progress.lua"
    KEYS = ("clock_inputs",)
    ARGV = ("partition_count", "reports")

    clock_inputs: str
    partition_count: int  # 0: unknown, not written
    reports: list[int]  # (partition, event ms, seen ms, grew ms) per partition, flat


@dataclass(frozen=True, slots=True)
class SplitCall(Signature):
    """split.lua: split a customer's identity graph in two, or join the two again, in the graph's slot."""

    PACKAGE = _PACKAGE
    SCRIPT = "split.lua"
    KEYS = ("split_record",)
    ARGV = (
        "id_head",
        "customer_head",
        "customer_ids_head",
        "alias_head",
        "aliases_of_head",
        "evidence_head",
        "blocked_head",
        "now_ms",
        "graph_ttl_ms",
        "mode",
        "record",
        "plan",
    )

    split_record: str
    id_head: str
    customer_head: str
    customer_ids_head: str
    alias_head: str
    aliases_of_head: str
    evidence_head: str
    blocked_head: str
    now_ms: int
    graph_ttl_ms: int
    mode: str  # 'split' | 'join'
    record: bytes  # the split record JSON to store
    plan: bytes  # MessagePack, see split.lua


@dataclass(frozen=True, slots=True)
class JourneySplitCall(Signature):
    """journey_split.lua: the kept customer's journey without the touchpoints a split moved away."""

    PACKAGE = _PACKAGE
    SCRIPT = "journey_split.lua"
    KEYS = ("journey_keys",)
    ARGV = ("timeline_digest", "work")

    journey_keys: list[str]  # timeline, touchpoints, summary, masks
    timeline_digest: str  # SHA-1 of the timeline as read
    work: bytes  # MessagePack, see journey_split.lua
