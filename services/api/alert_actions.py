"""Agents acknowledge and resolve alerts (``POST /api/v1/alerts/{alert_id}/acknowledge|resolve``), and every
alert the API serves carries its handling.

A change is stored first (services.api.handling_store, compare-and-set in the customer's slot), then
published on gap-alerts (services.api.alert_publisher) before the answer: the agent sees "done" only once
other agents' pages and Kafka readers can see it too. Asking again for a state the alert is in changes
nothing and publishes the same record again (a retry after a failed publish delivers it).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
import orjson
from aiohttp import web

from services.api.alert_publisher import AlertPublisher, PublishFailed
from services.api.audit import AUDIT_CUSTOMER, CALLER
from services.api.core.handling import BadNote, Refused, clean_note, is_open, overlay
from services.api.core.queries import CUSTOMER_ID, BadRequest
from services.api.handling_store import Conflict, HandlingStore
from services.api.responses import error_response, json_response
from services.common.documents import JourneyDocument
from services.common.timeutil import now_ms

log = logging.getLogger(__name__)
HANDLING = web.AppKey("handling", HandlingStore)
PUBLISHER = web.AppKey("publisher", AlertPublisher)
ALERT_ID = re.compile(r"a_[0-9a-f]{16,64}")
MAX_BODY = 4096


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise BadRequest(f"body larger than {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest('body must be JSON: {"note": "..."}') from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


async def _act(request: web.Request, action: str) -> web.Response:
    aid = request.match_info["alert_id"]
    if not ALERT_ID.fullmatch(aid):
        raise BadRequest("alert id must look like a_<16-64 hex digits>")
    body = await _body(request)
    try:
        note = clean_note(body.get("note"))
    except BadNote as exc:
        raise BadRequest(str(exc)) from None
    cid = body.get("customer_id")
    if cid is not None and (not isinstance(cid, str) or not CUSTOMER_ID.fullmatch(cid)):
        raise BadRequest("customer_id must look like c_<8-64 hex digits>")
    store = request.app[HANDLING]
    alert = await store.find_alert(aid, cid)
    if alert is None:
        return error_response(404, "no such alert (or it is older than the alerts the API keeps)")
    if not alert.get("customer_id"):
        return error_response(409, "a drop-off spike belongs to no customer: nothing for an agent to handle")
    request[AUDIT_CUSTOMER] = str(alert["customer_id"])
    try:
        change = await store.act(alert, action, request[CALLER].name, now_ms(), note)
    except Refused as exc:
        return error_response(409, str(exc))
    except Conflict as exc:
        return error_response(503, str(exc))
    doc = overlay(alert, change.handling)
    try:
        await request.app[PUBLISHER].publish(doc)
    except (PublishFailed, TimeoutError) as exc:
        log.warning("alert %s %s stored, not published: %s", aid, change.handling["state"], exc)
        return error_response(503, "stored, but gap-alerts did not acknowledge it yet: send it again")
    return json_response({"alert": doc, "changed": change.changed})


async def acknowledge(request: web.Request) -> web.Response:
    return await _act(request, "acknowledge")


async def resolve(request: web.Request) -> web.Response:
    return await _act(request, "resolve")


async def with_handling(request: web.Request, journey: JourneyDocument) -> dict[str, Any]:
    """A journey.v1 document, as sent, whose open alerts carry their handling; resolved ones leave the
    open list."""
    doc: dict[str, Any] = msgspec.to_builtins(journey)
    if doc["open_alerts"]:
        shown = await request.app[HANDLING].overlaid(doc["open_alerts"])
        doc["open_alerts"] = [a for a in shown if is_open(a)]
    return doc


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/alerts/{alert_id}/acknowledge", acknowledge)
    app.router.add_post("/api/v1/alerts/{alert_id}/resolve", resolve)
