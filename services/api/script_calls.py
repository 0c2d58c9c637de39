"""The API's Lua script calls as typed signatures (services/common/script_args.py): each names the KEYS
and ARGV of one script in services/api/lua/, in the order its header documents them."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.script_args import Signature

_PACKAGE = "services.api"


@dataclass(frozen=True, slots=True)
class ResolveCall(Signature):
    """lua/resolve.lua: an identifier or customer id to its surviving customer, in the graph's slot."""

    PACKAGE = _PACKAGE
    SCRIPT = "lua/resolve.lua"
    KEYS = ("start_key",)
    ARGV = ("customer_id", "max_alias_hops", "alias_template", "aliases_of_template")

    start_key: str  # the identifier key, or the alias key of customer_id
    customer_id: str  # '' with an identifier key
    max_alias_hops: int
    alias_template: str  # TEMPLATE_CID stands for the id
    aliases_of_template: str


@dataclass(frozen=True, slots=True)
class ReadJourneyCall(Signature):
    """lua/read_journey.lua: one customer's journey, read atomically in its own slot."""

    PACKAGE = _PACKAGE
    SCRIPT = "lua/read_journey.lua"
    KEYS = ("timeline", "touchpoints", "summary", "masked", "open_alerts")
    ARGV = ("max_touchpoints",)

    timeline: str
    touchpoints: str
    summary: str
    masked: str
    open_alerts: str
    max_touchpoints: int


@dataclass(frozen=True, slots=True)
class HandleAlertCall(Signature):
    """lua/handle_alert.lua: an agent's handling of one alert, written only if unchanged since read."""

    PACKAGE = _PACKAGE
    SCRIPT = "lua/handle_alert.lua"
    KEYS = ("handling",)
    ARGV = ("alert_id", "seen", "new", "keep_s")

    handling: str  # Keys.alert_handling of the alert's customer
    alert_id: str
    seen: str  # the handling JSON read ('' for none)
    new: str
    keep_s: int  # seconds the hash lives at least (the journey retention)


@dataclass(frozen=True, slots=True)
class LiveProbeCall(Signature):
    """lua/live_probe.lua: a string that changes when one customer's journey, alerts or handling do."""

    PACKAGE = _PACKAGE
    SCRIPT = "lua/live_probe.lua"
    KEYS = ("summary", "open_alerts", "handling")

    summary: str
    open_alerts: str
    handling: str
