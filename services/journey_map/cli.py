"""``journeys map``: run one journey-map worker in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import functools
import logging
from typing import Any

from pydantic import ValidationError

from services.common.errors import UserError
from services.common.settings import env_help
from services.journey_map.settings import JourneyMapSettings


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this area's commands to ``journeys``."""
    p = sub.add_parser(
        "map",
        help="run a journey-map worker (stitched-events, merges, alerts -> the live journey map)",
        description="Run one journey-map worker: per journey type and stage, entries, moves, conversions, "
        "drop-offs, time in stage, channels, departments, sentiment, NPS and open alerts, "
        "per event-time minute, by persona and channel, in Redis for GET /api/v1/journey-map "
        "and the /map page.",
        epilog=env_help(JourneyMapSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run)


def load_settings() -> JourneyMapSettings:
    try:
        return JourneyMapSettings()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise UserError(f"bad setting {where}: {err['msg']}") from None


def run(args: argparse.Namespace) -> int:
    from services.common.kafka_config import ensure_topics
    from services.common.signals import run_until_signalled
    from services.gap_detector.core.definitions import load_definitions
    from services.journey_map.metrics import MapMetrics
    from services.journey_map.worker import main

    settings = load_settings()
    logging.getLogger().setLevel(settings.log_level.upper())
    defs = load_definitions(settings.definitions)  # a bad file fails here, before anything connects
    metrics = MapMetrics()
    # Created when missing, so the map can start first; a refused credential or TLS fails here in one line.
    ensure_topics(
        settings, [settings.topic_stitched_events, settings.topic_identity_merges, settings.topic_gap_alerts]
    )
    try:
        metrics.serve(settings.map_metrics_port, settings.bind_host)
    except OSError as exc:
        where = f"{settings.bind_host}:{settings.map_metrics_port}"
        raise UserError(
            f"cannot serve metrics on {where} ({exc.strerror}); "
            "set JOURNEYS_MAP_METRICS_PORT or JOURNEYS_BIND_HOST"
        ) from None
    run_until_signalled(functools.partial(main, settings, defs, metrics))
    return 0
