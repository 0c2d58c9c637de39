"""``journeys stitcher``: run one stitcher worker in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pydantic import ValidationError

from services.common.errors import UserError
from services.common.settings import env_help
from services.stitcher.settings import StitcherSettings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this area's commands to ``journeys``."""
    parser = sub.add_parser(
        "stitcher",
        help="run the stitcher worker (identity resolution + journey writer)",
        description="Consume channel-events, resolve identities in Redis, publish stitched-events and "
                    "identity-merges, and keep every customer's journey in Redis. Runs until SIGINT/SIGTERM.",
        epilog=env_help(StitcherSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=run)


def load_settings() -> StitcherSettings:
    try:
        return StitcherSettings()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        raise UserError(f"invalid setting {where}: {err['msg']}") from None


def run(args: argparse.Namespace) -> int:
    import faust
    from prometheus_client import start_http_server

    from services.stitcher.adapters.topics import ensure_topics
    from services.stitcher.app import create_app

    settings = load_settings()
    ensure_topics(settings)
    try:
        start_http_server(settings.metrics_port)
    except OSError as exc:
        raise UserError(f"metrics port {settings.metrics_port} is in use ({exc.strerror}); "
                        "set JOURNEYS_STITCHER_METRICS_PORT") from None
    if settings.runner == "batch":
        from services.stitcher import batch_runner

        log.info("stitcher: batch runner, agents %s, metrics on :%d", ",".join(sorted(settings.agent_names)),
                 settings.metrics_port)
        batch_runner.run(settings)
        return 0
    app = create_app(settings)
    log.info("stitcher: agents %s, metrics on :%d", ",".join(sorted(settings.agent_names)),
             settings.metrics_port)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), redirect_stdouts=False)
    # faust's terminal spinner turns the root logger to DEBUG at WARNING level: every library debug
    # record is then built and dropped, which costs more than stitching. No spinner, no DEBUG.
    worker.spinner = None
    worker.execute_from_commandline()  # returns by SystemExit once a signal stopped the worker
    return 0
