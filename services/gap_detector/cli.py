"""``journeys detector``: run one gap detector worker in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import functools
import logging
from typing import Any

from pydantic import ValidationError

from services.common.errors import UserError
from services.common.settings import env_help
from services.gap_detector.settings import GapDetectorSettings


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this area's commands to ``journeys``."""
    p = sub.add_parser(
        "detector",
        help="run a gap detector worker (stitched-events -> gap-alerts)",
        description="Run one gap detector worker: channel switches, device switches, hand-offs, repeat "
        "contacts, stalls (timers in Redis) and drop-off spikes, as gap_alert.v1 records.",
        epilog=env_help(GapDetectorSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run)


def load_settings() -> GapDetectorSettings:
    try:
        return GapDetectorSettings()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise UserError(f"bad setting {where}: {err['msg']}") from None


def ensure_topics(settings: GapDetectorSettings) -> None:
    """Create the detector's topics when missing, so it can start before the stitcher (a subscription to
    a missing topic only errors until the next metadata refresh); fails fast on refused credentials/TLS."""
    from services.common.kafka_config import ensure_topics as create

    create(
        settings,
        [
            settings.topic_stitched_events,
            settings.topic_identity_merges,
            settings.topic_gap_alerts,
            settings.topic_dlq,
        ],
    )


def run(args: argparse.Namespace) -> int:
    from services.common.signals import run_until_signalled
    from services.gap_detector.core.definitions import load_definitions
    from services.gap_detector.metrics import DetectorMetrics
    from services.gap_detector.worker import main

    settings = load_settings()
    logging.getLogger().setLevel(settings.log_level.upper())
    defs = load_definitions(settings.definitions)  # a bad file fails here, before anything connects
    metrics = DetectorMetrics(personas=settings.persona_names)
    ensure_topics(settings)
    try:
        metrics.serve(settings.metrics_port, settings.bind_host)
    except OSError as exc:
        where = f"{settings.bind_host}:{settings.metrics_port}"
        raise UserError(
            f"cannot serve metrics on {where} ({exc.strerror}); "
            "set JOURNEYS_DETECTOR_METRICS_PORT or JOURNEYS_BIND_HOST"
        ) from None
    run_until_signalled(functools.partial(main, settings, defs, metrics))
    return 0
