"""``journeys api``: run the HTTP API and the agent page in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from pydantic import ValidationError

from services.common.errors import UserError
from services.common.settings import env_help


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``journeys api`` to the ``journeys`` command."""
    from services.api.settings import ApiSettings

    parser = sub.add_parser(
        "api",
        help="run the HTTP API, the agent page (/agent) and /metrics",
        description="Serve journey lookups, alerts, erasure, the agent page and Prometheus metrics.",
        epilog=env_help(ApiSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="bind address (overrides JOURNEYS_API_HOST)")
    parser.add_argument("--port", type=int, help="port (overrides JOURNEYS_API_PORT)")
    parser.set_defaults(func=run)


def load_settings(host: str | None = None, port: int | None = None) -> Any:
    from services.api.settings import ApiSettings

    try:
        settings = ApiSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "API settings"
        raise UserError(f"{where}: {first['msg']}") from None
    overrides = {k: v for k, v in (("api_host", host), ("api_port", port)) if v is not None}
    return settings.model_copy(update=overrides) if overrides else settings


def _event_loop() -> asyncio.AbstractEventLoop:
    # uvloop roughly halves the per-request overhead of aiohttp and redis-py; plain asyncio otherwise.
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from services.api.app import PathOnlyAccessLogger, create_app

    settings = load_settings(args.host, args.port)
    logging.getLogger("aiohttp.access").setLevel(settings.log_level.upper())
    log = logging.getLogger("journeys.api")
    log.info(
        "API on http://%s:%d (agent page /agent, metrics /metrics)", settings.listen_host, settings.api_port
    )
    try:
        web.run_app(
            create_app(settings),
            host=settings.listen_host,
            port=settings.api_port,
            loop=_event_loop(),
            access_log_class=PathOnlyAccessLogger,
            print=None,
            shutdown_timeout=5,
        )
    except OSError as exc:
        where = f"{settings.listen_host}:{settings.api_port}"
        raise UserError(f"cannot listen on {where}: {exc.strerror}") from None
    return 0
