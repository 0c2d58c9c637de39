"""Request handlers: parse (services.api.core.queries), read (store), shape (services.api.core)."""

from __future__ import annotations

import time
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.api import identity_routes, map_routes
from services.api.alert_actions import HANDLING, with_handling
from services.api.audit import AUDIT_BY, AUDIT_CUSTOMER
from services.api.core.journey import build_journey
from services.api.core.queries import alert_filter, customer_id, lookup_param
from services.api.erase import erase_customer
from services.api.lookup_keys import lookup_keys
from services.api.responses import METRICS, SETTINGS, STORE, error_response, json_response
from services.common.timeutil import now_ms


async def healthz(_: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if await request.app[STORE].ping():
        return json_response({"status": "ready"})
    return error_response(503, "Redis does not answer")


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def lookup(request: web.Request) -> web.Response:
    started = time.perf_counter()
    id_type, raw = lookup_param(request.query)
    request[AUDIT_BY] = id_type  # the type only: the value never reaches the audit trail
    keys = lookup_keys(request.app[SETTINGS], id_type, raw)
    if not keys:
        return error_response(400, f"{id_type} is not usable (unparseable, or a placeholder never stitched)")
    record = None
    for key in keys:  # the current HMAC key, then the ones it replaced (a rotation in progress)
        record = await request.app[STORE].journey(id_key=key)
        if record is not None:
            break
    if record is None:
        return error_response(404, f"no customer with that {id_type}")
    request[AUDIT_CUSTOMER] = record.customer_id
    resp = json_response(await with_handling(request, build_journey(record)))
    request.app[METRICS].lookup_latency.labels(by=id_type).observe(time.perf_counter() - started)
    return resp


async def journey_by_id(request: web.Request) -> web.Response:
    started = time.perf_counter()
    cid = customer_id(request.match_info["customer_id"])
    record = await request.app[STORE].journey(cid=cid)
    if record is None:
        return error_response(404, "no such customer")
    request[AUDIT_CUSTOMER] = record.customer_id
    resp = json_response(await with_handling(request, build_journey(record)))
    request.app[METRICS].lookup_latency.labels(by="customer_id").observe(time.perf_counter() - started)
    return resp


async def alerts(request: web.Request) -> web.Response:
    flt = alert_filter(request.query, default_limit=request.app[SETTINGS].api_alerts_limit)
    found = await request.app[HANDLING].overlaid(await request.app[STORE].alerts(flt))
    return json_response({"alerts": found, "count": len(found)})


async def erase(request: web.Request) -> web.Response:
    cid = customer_id(request.match_info["customer_id"])
    # The journey map first: its ids are found through the identity graph, which the erasure removes, so a
    # call repeated after a failure in between still finds them all.
    await (await map_routes.map_erasure(request, cid))()
    report = await erase_customer(request.app[STORE], cid, now_ms())
    if report is None:
        return error_response(404, "no such customer")
    request.app[METRICS].erasures.inc()
    return json_response({"erased": report.__dict__})


def add_routes(app: web.Application, static_dir: Path) -> None:
    async def agent_page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(static_dir / "agent.html")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/journeys/lookup", lookup)
    app.router.add_get("/api/v1/journeys/{customer_id}", journey_by_id)
    app.router.add_get("/api/v1/alerts", alerts)
    app.router.add_delete("/api/v1/customers/{customer_id}", erase)
    app.router.add_get("/agent", agent_page)
    app.router.add_static("/agent/static", static_dir, append_version=False)
    map_routes.add_routes(app, static_dir)  # /api/v1/journey-map, /map
    identity_routes.add_routes(app)  # why, split, undo, allow-merge (issue 14)
