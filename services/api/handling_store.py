"""Redis side of agents' alert handling and of the live page's change probe. Thin adapter: the rules are in
services.api.core.handling; every script touches one customer's slot only (``{<p>:c:<cid>}``), so this runs
unchanged on Redis Cluster.

Where an alert's handling lives: ``Keys.alert_handling`` of the customer the alert was raised for (its
``customer_id``, which an alert keeps after a merge), never the detector's documents, which the detector
rewrites (a severity update, a retraction) without knowing about agents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any

import orjson

from services.api.core.handling import Change, overlay, transition
from services.api.script_calls import HandleAlertCall, LiveProbeCall
from services.api.store import JourneyReader, text
from services.common.alert_handling import parse, read_handling
from services.common.scripts import Script

CAS_ATTEMPTS = 5  # compare-and-set rounds against concurrent agents before giving up (409 would be wrong)


class Conflict(RuntimeError):
    """The handling kept changing under us: answer 503, a retry will see it settled."""


class HandlingStore:
    def __init__(self, reader: JourneyReader, retention_s: int) -> None:
        self.reader, self.keys, self.retention_s = reader, reader.keys, retention_s
        self._handle = Script(reader.redis, HandleAlertCall.PACKAGE, HandleAlertCall.SCRIPT)
        self._probe = Script(reader.redis, LiveProbeCall.PACKAGE, LiveProbeCall.SCRIPT)

    async def find_alert(self, alert_id: str, customer_id: str | None) -> dict[str, Any] | None:
        """The detector's current document of an alert: the recent-alerts index first, else the open
        alerts of ``customer_id``'s journey (an alert older than the index keeps, still open)."""
        r, k = self.reader, self.keys
        raw = await r.call(lambda: r.redis.hget(k.alerts_by_id, alert_id))
        if raw is None and customer_id:
            survivor = await r.survivor(customer_id)
            raw = await r.call(lambda: r.redis.hget(k.open_alerts(survivor), alert_id))
        doc = parse(raw)
        return doc if doc is not None and doc.get("alert_id") == alert_id else None

    async def act(self, alert: dict[str, Any], action: str, by: str, at_ms: int, note: str) -> Change:
        """Apply ``action`` to the stored handling of ``alert`` (compare-and-set, retried on a race)."""
        r = self.reader
        key = self.keys.alert_handling(str(alert["customer_id"]))
        aid = str(alert["alert_id"])
        cid = str(alert["customer_id"])
        # Indexed before the handling is written: a reader that finds no index entry finds no handling.
        await r.call(lambda: r.redis.sadd(self.keys.handled_customers, cid))
        raw = await r.call(lambda: r.redis.hget(key, aid))
        for _ in range(CAS_ATTEMPTS):
            seen = text(raw) if raw else ""
            change = transition(parse(seen), action, by, at_ms, note, str(alert.get("status", "open")))
            if not change.changed:
                return change
            new = orjson.dumps(change.handling).decode()
            call = HandleAlertCall(key, aid, seen, new, self.retention_s)

            def cas(c: HandleAlertCall = call) -> Awaitable[Any]:
                return self._handle(*c.call())

            written, raw = await r.call(cas)
            if written:
                return change
        raise Conflict("the alert's handling kept changing; retry")

    async def handling_of(self, alerts: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """alert id -> its handling, for per-customer alerts (one pipelined HMGET per customer)."""
        listed = list(alerts)
        return await self.reader.call(lambda: read_handling(self.reader.redis, self.keys, listed))

    async def overlaid(self, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The alerts with their agents' handling laid over them (resolved ones closed)."""
        if not alerts:
            return alerts
        handling = await self.handling_of(alerts)
        return [overlay(a, handling.get(str(a["alert_id"]))) for a in alerts]

    async def probe(self, survivor: str, aliases: Iterable[str]) -> str:
        """A string that changes when the customer's journey, open alerts or handling change (also the
        handling of alerts raised under the ids merged into it, which lives in their slots: a second,
        pipelined read, only for a merged customer)."""
        k, r = self.keys, self.reader
        probe = LiveProbeCall(k.summary(survivor), k.open_alerts(survivor), k.alert_handling(survivor))
        own = text(await r.call(lambda: self._probe(*probe.call())))
        others = sorted(set(aliases) - {survivor})
        if not others:
            return own

        def read() -> Awaitable[list[Any]]:
            pipe = r.redis.pipeline(transaction=False)
            for cid in others:
                pipe.hget(k.alert_handling(cid), "~v")
            return pipe.execute()

        return "|".join([own, *(text(x) if x is not None else "0" for x in await r.call(read))])
