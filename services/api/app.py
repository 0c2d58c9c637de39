"""The HTTP API as an aiohttp application, built by ``create_app(settings)``.

Middlewares give every response the same shape: bearer-token auth with roles (services.api.auth), the
access audit (services.api.audit), JSON errors (400 with a reason, 401, 403, 404, 503 when Redis is away;
never a 500 for bad input) and request metrics by route template.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from services.api import alert_actions, live, routes
from services.api.alert_publisher import AlertPublisher
from services.api.audit import AUDIT_WRITTEN, CALLER, audited, record_access
from services.api.auth import TokenTable, bearer, needed_role
from services.api.core.queries import BadRequest
from services.api.handling_store import HandlingStore
from services.api.metrics import ApiMetrics
from services.api.responses import METRICS, SETTINGS, STORE, error_response
from services.api.settings import ApiSettings
from services.api.store import TRANSIENT, JourneyReader, StorageUnavailable
from services.common.keys import Keys
from services.common.redis_conn import AsyncClient, connect
from services.gap_detector.core.definitions import load_definitions

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Open to anyone: liveness/readiness probes and the agent and map page shells (their API calls carry
# the token).
PUBLIC_PREFIXES = ("/healthz", "/readyz", "/agent", "/map", "/favicon.ico")
REDIS_CONNECTIONS = 16  # enough to keep Redis busy from one event loop
TOKENS = web.AppKey("tokens", TokenTable)


def _route_label(request: web.Request) -> str:
    # The template, never the concrete path: customer ids must not become label values.
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's response, or the JSON error an exception stands for."""
    try:
        return await handler(request)
    except BadRequest as exc:
        return error_response(400, str(exc))
    except web.HTTPException as exc:
        return error_response(exc.status, exc.reason) if exc.status >= 400 else exc
    except (StorageUnavailable, *TRANSIENT):
        log.warning("storage unavailable for %s", _route_label(request))
        return error_response(503, "storage unavailable, retry shortly")


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    resp = await _answer(request, handler)
    request.app[METRICS].http_requests.labels(
        route=_route_label(request), method=request.method, status=str(resp.status)
    ).inc()
    return resp


@web.middleware
async def auth_and_audit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 without a known token, 403 when the caller's role may not use the method; every /api/ call
    (lookups, alerts, erasure) is appended to the access audit, refusals (403) and bad requests included,
    before the response leaves: if the audit cannot be written the caller gets 503, not the data."""
    settings = request.app[SETTINGS]
    path = request.path
    if path.startswith(PUBLIC_PREFIXES) or (path == "/metrics" and not settings.api_protect_metrics):
        return await handler(request)
    caller = request.app[TOKENS].caller(bearer(request.headers.get("Authorization", "")))
    if caller is None:
        return error_response(401, "missing or wrong bearer token")
    request[CALLER] = caller
    route = _route_label(request)
    if caller.may(needed_role(request.method, route)):
        resp = await _answer(request, handler)
    else:
        resp = error_response(403, f"the {caller.role} role may not {request.method} {route}")
    # A 503 gave nothing away, and the Redis that just failed would only make the caller wait twice. A
    # streamed response (the live page's events) wrote its entry before its first byte.
    audit = audited(route) and resp.status != 503 and not request.get(AUDIT_WRITTEN)
    if audit and not await record_access(
        request.app[STORE], settings.api_audit_maxlen, request, caller, route, resp.status
    ):
        log.error("access audit not written: %s %s answered 503", request.method, route)
        return error_response(503, "audit trail unavailable, retry shortly")
    return resp


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without the query string: lookups carry phone numbers and e-mail addresses there."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.1fms", request.method, request.path, response.status, time * 1000)


def redis_client(settings: ApiSettings) -> AsyncClient:
    """A bounded pool: under a burst, requests wait for one of a few warm connections instead of opening
    new ones (a connect costs far more than a lookup, which would turn a burst into a collapse). No
    CLIENT SETINFO on connect: it reads package metadata from disk every time. On a cluster the pools are
    per node and do not block: a request finding one exhausted gets MaxConnectionsError, a
    ConnectionError that JourneyReader.call retries with backoff, so it waits all the same."""
    timeout = settings.api_redis_timeout_s
    return connect(
        settings.redis_url,
        pool_wait_s=timeout,
        max_connections=REDIS_CONNECTIONS,
        socket_connect_timeout=timeout,
        lib_name=None,
        lib_version=None,
    )


def create_app(settings: ApiSettings, *, redis: AsyncClient | None = None) -> web.Application:
    """The API application. ``redis`` lets tests and benchmarks share a client; else one is opened."""
    app = web.Application(middlewares=[errors_and_metrics, auth_and_audit], client_max_size=64 * 1024)
    metrics = ApiMetrics()
    app[SETTINGS], app[METRICS], app[TOKENS] = settings, metrics, settings.token_table()
    own_client = redis is None
    client = redis or redis_client(settings)
    app[STORE] = JourneyReader(
        client,
        Keys(settings.key_prefix),
        metrics,
        retries=settings.api_redis_retries,
        max_touchpoints=settings.api_max_touchpoints,
        alerts_scan=settings.api_alerts_scan,
        timeout_s=settings.api_redis_timeout_s,
    )

    app[alert_actions.HANDLING] = HandlingStore(app[STORE], settings.retention_ms // 1000)
    app[alert_actions.PUBLISHER] = publisher = AlertPublisher(settings)
    app[live.DEFINITIONS] = load_definitions(settings.definitions)

    async def close_client(_: web.Application) -> None:
        publisher.close()
        if own_client:
            await client.aclose()

    app.on_cleanup.append(close_client)
    routes.add_routes(app, STATIC_DIR)
    alert_actions.add_routes(app)  # POST /api/v1/alerts/{alert_id}/acknowledge|resolve
    live.add_routes(app)  # GET /api/v1/journeys/{customer_id}/events|next
    return app
