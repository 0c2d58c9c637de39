"""The journey map on the API: GET /api/v1/journey-map (the map document), GET /api/v1/journey-map/customers
(who is behind a pain point) and the /map page. Parse (journey_map.core.query), read (journey_map.store),
shape (journey_map.core.document)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from services.api.responses import SETTINGS, STORE, json_response
from services.api.store import StorageUnavailable
from services.common.timeutil import format_ms, now_ms
from services.gap_detector.core.definitions import load_definitions
from services.journey_map.core.bounds import Bounds
from services.journey_map.core.document import build_document
from services.journey_map.core.query import customers_query, map_query
from services.journey_map.core.state import AGGREGATE
from services.journey_map.keys import MapKeys
from services.journey_map.settings import JourneyMapSettings
from services.journey_map.store import Conflict, MapStore, erase_customers

MAP = web.AppKey("journey_map", tuple)  # (Bounds, MapStore), made at startup


async def _setup(app: web.Application) -> None:
    from services.journey_map.worker import bounds_of

    settings = JourneyMapSettings()  # the map's own variables (shards, personas…); the prefix is the API's
    client = app[STORE].redis
    store = MapStore(
        client,
        MapKeys(app[SETTINGS].key_prefix, settings.map_shards),
        minute_ttl_ms=0,
        hour_ttl_ms=0,
        state_ttl_ms=0,
        pain_members=settings.map_pain_members,
    )
    app[MAP] = (bounds_of(settings, load_definitions(settings.definitions)), store)


def _map(request: web.Request) -> tuple[Bounds, MapStore]:
    bounds, store = request.app[MAP]
    return bounds, store


async def journey_map(request: web.Request) -> web.Response:
    bounds, store = _map(request)
    now = now_ms()
    q = map_query(request.query, bounds, now)
    windows, in_stage = await request.app[STORE].call(lambda: store.window(q.since_ms, q.until_ms))
    merged_now: dict[bytes, int] = {}
    for h in in_stage:
        for k, v in h.items():
            merged_now[k] = merged_now.get(k, 0) + int(v)
    return json_response(build_document(q, bounds, windows, merged_now, now))


async def pain_customers(request: web.Request) -> web.Response:
    bounds, store = _map(request)
    journey, stage, kind, persona, limit = customers_query(request.query, bounds)
    rows = await request.app[STORE].call(lambda: store.pain_members(journey, stage, kind, limit * 4))
    out = []
    for member, t in rows:
        cid, _, rest = member.partition("|")
        alert_id, _, who = rest.partition("|")
        if cid.startswith(AGGREGATE) or (persona and who != persona):
            continue
        out.append({"customer_id": cid, "alert_id": alert_id, "persona": who, "occurred_at": format_ms(t)})
        if len(out) >= limit:
            break
    return json_response(
        {"journey": journey, "stage": stage, "type": kind, "customers": out, "count": len(out)}
    )


async def map_erasure(request: web.Request, cid: str) -> Callable[[], Awaitable[int]]:
    """The journey map's part of erasing ``cid`` and every id merged into it (resolved through the identity
    graph, so before the API's erasure removes it); the returned call forgets them in the map."""
    reader = request.app[STORE]
    bounds, store = _map(request)
    cids = await reader.related_ids(await reader.survivor(cid)) | {cid}

    async def forget() -> int:
        try:
            return await reader.call(lambda: erase_customers(store, cids, bounds))
        except Conflict:
            raise StorageUnavailable("journey map busy with these customers") from None

    return forget


def add_routes(app: web.Application, static_dir: Path) -> None:
    async def map_page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(static_dir / "map.html")

    app.on_startup.append(_setup)
    app.router.add_get("/api/v1/journey-map", journey_map)
    app.router.add_get("/api/v1/journey-map/customers", pain_customers)
    app.router.add_get("/map", map_page)
