"""``journeys stitcher``: run one stitcher worker in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import functools
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
        help="run the stitcher worker (identity resolution + journey store)",
        description="Consume channel-events, resolve identities and write every customer's journey in Redis "
        "(one script call per batch), publish stitched-events and identity-merges. Runs until "
        "SIGINT/SIGTERM, which finishes and commits the batch in flight.",
        epilog=env_help(StitcherSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=run)
    from services.stitcher import split_cli  # journeys split, journeys why (issue 14)

    split_cli.register(sub)


def load_settings() -> StitcherSettings:
    try:
        return StitcherSettings()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        raise UserError(f"invalid setting {where}: {err['msg']}") from None


def run(args: argparse.Namespace) -> int:
    from services.common.kafka_config import ensure_topics
    from services.common.signals import run_until_signalled
    from services.stitcher.adapters.topics import stitcher_topics
    from services.stitcher.metrics import StitcherMetrics
    from services.stitcher.worker import main

    settings = load_settings()
    logging.getLogger().setLevel(settings.log_level.upper())
    ensure_topics(settings, stitcher_topics(settings))  # fails fast on refused credentials or TLS
    metrics = StitcherMetrics()
    try:
        metrics.serve(settings.metrics_port, settings.bind_host)
    except OSError as exc:
        where = f"{settings.bind_host}:{settings.metrics_port}"
        raise UserError(
            f"cannot serve metrics on {where} ({exc.strerror}); "
            "set JOURNEYS_STITCHER_METRICS_PORT or JOURNEYS_BIND_HOST"
        ) from None
    log.info("stitcher: metrics on %s:%d", settings.bind_host, settings.metrics_port)
    run_until_signalled(functools.partial(main, settings, metrics))
    return 0
