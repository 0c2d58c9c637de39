"""The project's own services as the local stack runs them: `journeys stitcher|detector|api|map`."""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from services.stack.procs import Proc, require_free, spawn
from services.stack.settings import StackSettings


@dataclass(frozen=True)
class App:
    name: str  # process name in stack.json and status
    command: str  # `journeys <command>`
    health_url: str
    port: int  # must be free before the start, or the health probe would ask someone else
    port_variable: str


def apps(settings: StackSettings) -> list[App]:
    return [
        App(
            "stitcher",
            "stitcher",
            f"http://{settings.metrics_host}:{settings.stitcher_metrics_port}/metrics",
            settings.stitcher_metrics_port,
            "JOURNEYS_STITCHER_METRICS_PORT",
        ),
        App(
            "detector",
            "detector",
            f"http://{settings.metrics_host}:{settings.detector_metrics_port}/metrics",
            settings.detector_metrics_port,
            "JOURNEYS_DETECTOR_METRICS_PORT",
        ),
        App("api", "api", f"{settings.api_base_url}/healthz", settings.api_port, "JOURNEYS_API_PORT"),
        App(
            "map",
            "map",
            f"http://{settings.metrics_host}:{settings.map_metrics_port}/metrics",
            settings.map_metrics_port,
            "JOURNEYS_MAP_METRICS_PORT",
        ),
    ]


def start(app: App, log: Path, env: dict[str, str]) -> Proc:
    require_free(app.port, app.name, app.port_variable)
    # The service writes and rotates its own log (services/common/logs.py); what it prints before its
    # logging is set up is appended to the same file by the redirect.
    return spawn(app.name, command(app), log, env={**env, "JOURNEYS_LOG_FILE": str(log)})


def registered_commands() -> set[str]:
    """Sub-commands the `journeys` parser knows today (areas land one by one)."""
    from services.cli.main import build_parser

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def command(app: App) -> list[str]:
    # The interpreter that runs us, so the services get the same venv without relying on PATH.
    return [sys.executable, "-m", "services.cli.main", app.command]


def app_env(settings: StackSettings, bootstrap: str, redis_url: str) -> dict[str, str]:
    """The caller's environment (e.g. JOURNEYS_TIMER_CLOCK from the demo) plus the stack's endpoints."""
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REDIS_URL": redis_url,
            "JOURNEYS_STITCHER_METRICS_PORT": str(settings.stitcher_metrics_port),
            "JOURNEYS_DETECTOR_METRICS_PORT": str(settings.detector_metrics_port),
            "JOURNEYS_MAP_METRICS_PORT": str(settings.map_metrics_port),
            "JOURNEYS_BIND_HOST": settings.bind_host,
            "JOURNEYS_API_PORT": str(settings.api_port),
        }
    )
    if settings.api_host:
        env["JOURNEYS_API_HOST"] = settings.api_host
    return env


def http_healthy(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # loopback URLs we built
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
