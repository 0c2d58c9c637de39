"""Why customers are one, and splitting them (issue 14), on the API:

- ``GET /api/v1/customers/{id}/why[?email=…]``: the recorded links that make the identifier part of the
  customer (or every link), masked values only; agents and admins;
- ``POST /api/v1/customers/{id}/split`` ``{"identifiers": [{"type": "email", "value": "…"}]}`` or
  ``{"merge": {"event_id": "…", "loser": "c_…"}}``: split the customer (admin);
- ``GET /api/v1/splits/{split_id}``; ``POST /api/v1/splits/{split_id}/undo`` (admin);
- ``POST /api/v1/customers/{id}/allow-merge`` ``{"with": "c_…"}``: let a split pair merge again (admin).

Every method but GET needs the admin role (services/api/auth.py). Identifier values come in the request
body (or, for ``why``, the query as for lookups) and never leave: responses show types and masks.
The work is services/stitcher/split_service.py's.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from services.api.audit import AUDIT_BY, AUDIT_CUSTOMER, CALLER
from services.api.core.queries import BadRequest, customer_id, lookup_param
from services.api.responses import SETTINGS, STORE, error_response, json_response
from services.stitcher.adapters.split_store import SplitBusy
from services.stitcher.core.split import SplitRefused
from services.stitcher.split_service import MergePublisher, PublishFailed, SplitService

SPLITS = web.AppKey("splits", SplitService)
SPLIT_ID = re.compile(r"^s_[0-9a-f]{16}$")
MAX_IDENTIFIERS = 64


async def _setup(app: web.Application) -> None:
    from services.stitcher.settings import StitcherSettings  # the journey cap the stitcher writes with

    settings = app[SETTINGS]
    publisher = MergePublisher(settings)
    app[SPLITS] = SplitService(settings, app[STORE].redis, StitcherSettings().max_touchpoints, publisher)

    async def close(_: web.Application) -> None:
        publisher.close()

    app.on_cleanup.append(close)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError:
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _by(request: web.Request) -> str:
    caller = request.get(CALLER)
    return caller.name if caller is not None else "api"


async def _run(request: web.Request, work: Any) -> web.Response:
    try:
        return json_response(await work)
    except SplitRefused as exc:
        status = 404 if str(exc) in ("no such customer", "no such split") else 400
        return error_response(status, str(exc))
    except SplitBusy as exc:
        return error_response(503, str(exc))
    except PublishFailed:
        return error_response(
            503,
            "stored, but identity-merges did not acknowledge the record: repeat the "
            "same request to publish it",
        )


async def why(request: web.Request) -> web.Response:
    cid = customer_id(request.match_info["customer_id"])
    request[AUDIT_CUSTOMER] = cid
    if not request.query:
        return await _run(request, request.app[SPLITS].why(cid))
    id_type, raw = lookup_param(request.query)
    request[AUDIT_BY] = id_type
    return await _run(request, request.app[SPLITS].why(cid, id_type, raw))


async def split(request: web.Request) -> web.Response:
    cid = customer_id(request.match_info["customer_id"])
    request[AUDIT_CUSTOMER] = cid
    body = await _body(request)
    idents, merge = body.get("identifiers"), body.get("merge")
    if (idents is None) == (merge is None):
        raise BadRequest('give either "identifiers" or "merge"')
    service = request.app[SPLITS]
    if merge is not None:
        if not isinstance(merge, dict) or not isinstance(merge.get("event_id"), str):
            raise BadRequest('"merge" must be {"event_id": …, "loser": "c_…"}')
        pair = (merge["event_id"], customer_id(str(merge.get("loser", ""))))
        return await _run(request, service.split(cid, merge=pair, by=_by(request)))
    if (
        not isinstance(idents, list)
        or not 0 < len(idents) <= MAX_IDENTIFIERS
        or not all(
            isinstance(i, dict) and isinstance(i.get("type"), str) and isinstance(i.get("value"), str)
            for i in idents
        )
    ):
        raise BadRequest(f'"identifiers" must be 1-{MAX_IDENTIFIERS} of {{"type": …, "value": …}}')
    pairs = [(i["type"], i["value"]) for i in idents]
    return await _run(request, service.split(cid, identifiers=pairs, by=_by(request)))


def _split_id(request: web.Request) -> str:
    sid = request.match_info["split_id"]
    if not SPLIT_ID.match(sid):
        raise BadRequest("split_id must look like s_ followed by 16 lowercase hex digits")
    return sid


async def split_record(request: web.Request) -> web.Response:
    sid = _split_id(request)
    found = await request.app[SPLITS].record(sid)
    return json_response(found) if found else error_response(404, "no such split")


async def undo(request: web.Request) -> web.Response:
    return await _run(request, request.app[SPLITS].undo(_split_id(request), by=_by(request)))


async def allow_merge(request: web.Request) -> web.Response:
    cid = customer_id(request.match_info["customer_id"])
    request[AUDIT_CUSTOMER] = cid
    other = customer_id(str((await _body(request)).get("with", "")))
    removed = await request.app[SPLITS].allow(cid, other)
    return json_response({"customer_id": cid, "with": other, "allowed": True, "was_blocked": removed > 0})


def add_routes(app: web.Application) -> None:
    app.on_startup.append(_setup)
    app.router.add_get("/api/v1/customers/{customer_id}/why", why)
    app.router.add_post("/api/v1/customers/{customer_id}/split", split)
    app.router.add_post("/api/v1/customers/{customer_id}/allow-merge", allow_merge)
    app.router.add_get("/api/v1/splits/{split_id}", split_record)
    app.router.add_post("/api/v1/splits/{split_id}/undo", undo)
