"""The live agent page's feed: ``GET /api/v1/journeys/{customer_id}/events`` (server-sent events) and what
comes next on the customer's open journeys (``GET /api/v1/journeys/{customer_id}/next``).

Why polling Redis, and not pub/sub or a stream: the journey, the open alerts and the agents' handling are
written by three services (stitcher, detector, API) in scripts that must stay single-slot and cheap; none
of them announces its writes, and Redis Cluster's pub/sub would broadcast every message to every node.
Instead each open page costs one script call per JOURNEYS_API_LIVE_POLL (0.5 s) in its customer's own slot
(``live_probe.lua``: a digest of the summary, which every stitched event changes, and of the open alerts,
plus the handling counter); only when it changes is the journey read and sent. 200 agents on calls are
400 small calls a second. Nothing to subscribe to means nothing lost while a page reconnects: its first
event is always the whole current state.

Each event is the whole view (``event: journey``: the journey.v1 document with handling, ``next`` and the
server time), so a page that missed any number of changes is right again after one. A comment line every
15 s keeps proxies from closing an idle stream; ``retry: 2000`` tells the browser when to come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from aiohttp import web

from services.api.alert_actions import HANDLING, with_handling
from services.api.audit import AUDIT_CUSTOMER, AUDIT_WRITTEN, CALLER, audited, record_access
from services.api.core.journey import build_journey
from services.api.core.next_steps import what_next
from services.api.core.queries import customer_id
from services.api.responses import SETTINGS, STORE, error_response, json_response
from services.api.store import TRANSIENT, StorageUnavailable
from services.common.timeutil import format_ms, now_ms
from services.gap_detector.core.definitions import Definitions

log = logging.getLogger(__name__)
DEFINITIONS = web.AppKey("definitions", Definitions)
STOPPING = web.AppKey("live_stopping", asyncio.Event)
HEARTBEAT_S = 15.0
RETRY_MS = 2000
EVENTS_ROUTE = "/api/v1/journeys/{customer_id}/events"


async def view(request: web.Request, cid: str) -> dict[str, Any] | None:
    """What the page shows of ``cid`` (followed to its survivor): the journey with its alerts' handling,
    what comes next, and the server's time (the countdowns count from it). None when unknown."""
    record = await request.app[STORE].journey(cid=cid)
    if record is None:
        return None
    doc = await with_handling(request, build_journey(record))
    at = now_ms()
    nxt = what_next(record.summary, request.app[DEFINITIONS], at, doc["open_alerts"])
    return {"customer_id": record.customer_id, "journey": doc, "next": nxt, "server_time": format_ms(at)}


async def next_steps(request: web.Request) -> web.Response:
    got = await view(request, customer_id(request.match_info["customer_id"]))
    if got is None:
        return error_response(404, "no such customer")
    request[AUDIT_CUSTOMER] = got["customer_id"]
    return json_response(
        {"customer_id": got["customer_id"], "journeys": got["next"], "server_time": got["server_time"]}
    )


def _shown(v: dict[str, Any]) -> tuple[Any, ...]:
    """What the page shows of a view, apart from the clock (the countdowns run on the page)."""
    return v["journey"], [{k: x for k, x in n.items() if k != "seconds_left"} for n in v["next"]]


def _event(name: str, body: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


async def events(request: web.Request) -> web.StreamResponse:
    """Stream the customer's view: at once, then whenever the probe sees a change."""
    asked = customer_id(request.match_info["customer_id"])
    first = await view(request, asked)
    if first is None:
        return error_response(404, "no such customer")
    settings, handling = request.app[SETTINGS], request.app[HANDLING]
    request[AUDIT_CUSTOMER] = first["customer_id"]
    # Audited before the first byte (the middleware's entry would only be written once the stream ends).
    if audited(EVENTS_ROUTE):
        if not await record_access(
            request.app[STORE], settings.api_audit_maxlen, request, request[CALLER], EVENTS_ROUTE, 200
        ):
            return error_response(503, "audit trail unavailable, retry shortly")
        request[AUDIT_WRITTEN] = True
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await resp.prepare(request)
    stopping = request.app[STOPPING]
    current = first
    try:
        await resp.write(f"retry: {RETRY_MS}\n\n".encode() + _event("journey", current))
        probe = None
        quiet_since = time.monotonic()
        while not stopping.is_set():
            seen = await handling.probe(current["customer_id"], current["journey"]["aliases"])
            if seen != probe:
                # Read after the probe, so no change slips between them (the first round reads the view
                # twice: it may have changed between the first read and the first probe).
                probe = seen
                fresh = await view(request, asked)
                if fresh is None:  # erased meanwhile
                    await resp.write(_event("gone", {"customer_id": asked}))
                    break
                if _shown(fresh) != _shown(current):
                    current = fresh
                    await resp.write(_event("journey", current))
                    quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= HEARTBEAT_S:
                await resp.write(b": keep-alive\n\n")
                quiet_since = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=settings.api_live_poll_s)
    except (ConnectionResetError, StorageUnavailable, *TRANSIENT) as exc:
        # The page went away, or Redis did: end the stream; the browser comes back after RETRY_MS.
        log.debug("live stream of %s ended: %s", asked, type(exc).__name__)
    return resp


async def _stop_streams(app: web.Application) -> None:
    app[STOPPING].set()  # graceful shutdown: open streams end within one poll instead of being cut


def add_routes(app: web.Application) -> None:
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(_stop_streams)
    app.router.add_get(EVENTS_ROUTE, events)
    app.router.add_get("/api/v1/journeys/{customer_id}/next", next_steps)
