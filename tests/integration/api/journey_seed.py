"""Writes journeys into Redis in the documented journey-store layout (docs/ARCHITECTURE.md), so API,
browser and benchmark runs have data without running the whole pipeline. Identifiers are hashed and
masked with the stitcher's own functions, exactly as the stitcher stores them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from services.common.keys import Keys
from services.common.settings import CommonSettings
from services.common.timeutil import parse_rfc3339_ms
from services.stitcher.core.identifiers import id_key, mask, normalise

TOUCHPOINT_FIELDS = (
    "event_id",
    "occurred_at",
    "channel",
    "touchpoint",
    "direction",
    "visibility",
    "department",
    "journey",
    "intent",
    "outcome",
    "sentiment",
    "nps",
    "emotion",
    "device",
    "persona",
)


@dataclass
class Customer:
    customer_id: str
    identifiers: Mapping[str, str]  # type -> raw value
    events: Sequence[Mapping[str, Any]]  # channel_event-like dicts
    aliases: Sequence[str] = ()  # ids merged into this one
    open_alerts: Sequence[Mapping[str, Any]] = ()
    extra_ids: dict[str, str] = field(default_factory=dict)


def summary_fields(events: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The summary hash the stitcher keeps (order-independent fields)."""
    evs = sorted(events, key=lambda e: (parse_rfc3339_ms(e["occurred_at"]), e["event_id"]))
    out: dict[str, str] = {"v": "1", "count": str(len(evs)), "in": "0", "out": "0"}
    for e in evs:
        ms = parse_rfc3339_ms(e["occurred_at"])
        out.setdefault("first_ms", str(ms))
        out["last_ms"], out["last_channel"] = str(ms), e["channel"]
        for name in (f"ch:{e['channel']}", "in" if e.get("direction", "inbound") == "inbound" else "out"):
            out[name] = str(int(out.get(name, "0")) + 1)
        if "department" in e:
            out[f"dept:{e['department']}"] = str(int(out.get(f"dept:{e['department']}", "0")) + 1)
        if "journey" in e:
            out[f"stage:{e['journey']['type']}"] = e["journey"]["stage"]
            out[f"stage_ms:{e['journey']['type']}"] = str(ms)
        if "nps" in e:
            out["nps"], out["nps_ms"] = str(e["nps"]), str(ms)
    return out


def queue_customer(pipe: Any, keys: Keys, settings: CommonSettings, c: Customer) -> None:
    """Queue every write of one customer on a Redis pipeline."""
    cid, secret = c.customer_id, settings.secret_bytes()
    ids = {}
    for id_type, raw in c.identifiers.items():
        norm = normalise(id_type, raw, phone_region=settings.phone_region)
        assert norm is not None, f"unusable test identifier of type {id_type}"
        ids[id_key(secret, id_type, norm)] = mask(id_type, norm)
    for key in ids:
        pipe.set(keys.identifier(key), cid)
    first = min((parse_rfc3339_ms(e["occurred_at"]) for e in c.events), default=0)
    pipe.hset(keys.customer(cid), mapping={"first_seen_ms": first, "created_ms": first})
    if ids:
        pipe.sadd(keys.customer_ids(cid), *ids)
        pipe.hset(keys.masked(cid), mapping=ids)
    if c.events:
        pipe.zadd(keys.timeline(cid), {e["event_id"]: parse_rfc3339_ms(e["occurred_at"]) for e in c.events})
        pipe.hset(
            keys.touchpoints(cid),
            mapping={
                e["event_id"]: orjson.dumps(
                    {
                        "direction": "inbound",
                        "visibility": "onstage",
                        **{k: e[k] for k in TOUCHPOINT_FIELDS if k in e},
                    }
                )
                for e in c.events
            },
        )
        pipe.hset(keys.summary(cid), mapping=summary_fields(c.events))
    for loser in c.aliases:
        pipe.set(keys.alias(loser), cid)
        pipe.sadd(keys.aliases_of(cid), loser)
    for alert in c.open_alerts:
        pipe.hset(keys.open_alerts(cid), alert["alert_id"], orjson.dumps(alert))


def seed(redis: Any, keys: Keys, settings: CommonSettings, customers: Iterable[Customer]) -> None:
    pipe = redis.pipeline(transaction=False)
    for c in customers:
        queue_customer(pipe, keys, settings, c)
    pipe.execute()


def add_recent_alerts(redis: Any, keys: Keys, alerts: Iterable[Mapping[str, Any]]) -> None:
    """What the detector keeps for GET /api/v1/alerts."""
    pipe = redis.pipeline(transaction=False)
    for a in alerts:
        pipe.zadd(keys.recent_alerts, {a["alert_id"]: parse_rfc3339_ms(a["detected_at"])})
        pipe.hset(keys.alerts_by_id, a["alert_id"], orjson.dumps(a))
    pipe.execute()
