"""The access audit trail: who looked up or erased which customer, when, through which route.

A Redis stream, ``<prefix>:audit:access`` (beside the erasure audit ``<prefix>:audit:erasures``): the API
already holds a Redis connection and no Kafka producer, and an XADD is one round trip the response waits
for, so a lookup whose audit entry could not be written answers 503 instead of data (no unaudited read).
Ship it to a SIEM with XREAD from a consumer of your own; it is trimmed (approximately) to
JOURNEYS_API_AUDIT_MAXLEN entries.

An entry holds the caller's name and role, the time, the method, the route *template*, the status, the
pseudonymous customer id and, for lookups, the identifier *type*: never the identifier, never the path
as typed (a customer id that does not look like one is not recorded).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from redis.exceptions import RedisError

from services.api.auth import Caller
from services.api.core.queries import CUSTOMER_ID
from services.common.keys import Keys
from services.common.timeutil import format_ms, now_ms

if TYPE_CHECKING:
    from services.api.store import JourneyReader

AUDIT_CUSTOMER = web.RequestKey("audit_customer", str)  # the customer a handler resolved (pseudonymous)
AUDIT_BY = web.RequestKey("audit_by", str)  # the identifier type a lookup used
CALLER = web.RequestKey("caller", Caller)  # who is calling (set by the auth middleware)
AUDIT_WRITTEN = web.RequestKey("audit_written", bool)  # a streamed response audited itself before streaming
AUDITED_PREFIX = "/api/"  # every API call: lookups, journeys, alerts, the journey map, erasure


def access_audit(keys: Keys) -> str:
    return f"{keys.prefix}:audit:access"


def audited(route: str) -> bool:
    return route.startswith(AUDITED_PREFIX)


def entry(request: web.Request, caller: Caller, route: str, status: int, at_ms: int) -> dict[str, str]:
    """The stream entry of one request (every value a string)."""
    cid = (
        request.get(AUDIT_CUSTOMER)
        or request.match_info.get("customer_id", "")
        or request.query.get("customer_id", "")
    )
    return {
        "at": format_ms(at_ms),
        "who": caller.name,
        "role": caller.role,
        "method": request.method,
        "route": route,
        "status": str(status),
        "customer_id": cid if CUSTOMER_ID.match(cid) else "",
        "by": str(request.get(AUDIT_BY, "")),
    }


async def record_access(
    store: JourneyReader, maxlen: int, request: web.Request, caller: Caller, route: str, status: int
) -> bool:
    """Append one entry to the access audit; False when Redis refused it (the caller must then get 503)."""
    fields, key = entry(request, caller, route, status, now_ms()), access_audit(store.keys)
    try:
        await store.call(
            lambda: store.redis.xadd(
                key,
                fields,  # type: ignore[arg-type]
                maxlen=maxlen,
                approximate=True,
            )
        )
    except RedisError:  # e.g. WRONGTYPE, an ACL that forbids XADD: never answer unaudited
        return False
    return True
