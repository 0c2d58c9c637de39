"""Application keys and the JSON response shapes shared by the middlewares and the handlers."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from services.api.metrics import ApiMetrics
from services.api.settings import ApiSettings
from services.api.store import JourneyReader

SETTINGS = web.AppKey("settings", ApiSettings)
STORE = web.AppKey("store", JourneyReader)
METRICS = web.AppKey("metrics", ApiMetrics)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error_response(status: int, reason: str) -> web.Response:
    """Every error: ``{"error": {"status": …, "reason": …}}``; the reason never echoes an identifier."""
    resp = json_response({"error": {"status": status, "reason": reason}}, status)
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="journeys"'
    return resp
