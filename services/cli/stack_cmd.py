"""`journeys setup|up|down|status|env`: the local stack (Kafka, Redis, the services) and the settings."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from typing import Any

import orjson
from rich.console import Console

from services.common.errors import UserError
from services.common.settings import env_help
from services.stack.settings import StackSettings

_err = Console(stderr=True, highlight=False)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this area's commands to ``journeys``."""
    epilog = env_help(StackSettings)
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser(
        "setup",
        help="install what is missing: Kafka jars, redis-server, promtool, chromium",
        epilog=epilog,
        formatter_class=fmt,
    )
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser(
        "up",
        help="start Kafka, Redis and the services in the background",
        description="Start the local stack: a Kafka broker (KRaft) on 127.0.0.1:39092, Redis "
        "(REDIS_URL, else redis-server on 36379, or a 3-master Redis Cluster "
        "on 36379-36381 with --redis-cluster) and the services.",
        epilog=epilog,
        formatter_class=fmt,
    )
    p.add_argument("--infra-only", action="store_true", help="start just Kafka and Redis")
    p.add_argument(
        "--redis-cluster",
        action="store_true",
        help="a local 3-master Redis Cluster, not one redis-server (JOURNEYS_REDIS_CLUSTER=1)",
    )
    p.add_argument(
        "--supervise",
        action="store_true",
        help="also start a supervisor that restarts a crashed service with backoff "
        "(JOURNEYS_RESTART_*; `status` counts the restarts, `down` stops it first)",
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser(
        "supervise",
        help="restart the stack's services when they crash (foreground)",
        description="Watch the services `journeys up` started and restart one that exits, "
        "after JOURNEYS_RESTART_DELAY doubled per crash in a row. "
        "`up --supervise` runs this in the background.",
        epilog=epilog,
        formatter_class=fmt,
    )
    p.set_defaults(func=cmd_supervise)

    p = sub.add_parser(
        "down", help="stop exactly what `journeys up` started", epilog=epilog, formatter_class=fmt
    )
    p.set_defaults(func=cmd_down)

    p = sub.add_parser(
        "status",
        help="endpoints and health of the local stack (exit 1 when unhealthy)",
        epilog=epilog,
        formatter_class=fmt,
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "env",
        help="every environment variable of every service: its value in effect, set or "
        "default (secrets masked)",
    )
    p.add_argument(
        "--markdown", action="store_true", help="print the table of docs/configuration.md (the defaults)"
    )
    p.set_defaults(func=cmd_env)


def _quiet_clients() -> None:
    # The stack's health probes open many short Kafka connections; their INFO lines are noise here.
    logging.getLogger("kafka").setLevel(logging.WARNING)


def _say(line: str) -> None:
    _err.print(line)


def cmd_setup(args: argparse.Namespace) -> int:
    _quiet_clients()
    from services.stack import install, kafka_jars

    settings = StackSettings()
    kafka_jars.require_java()
    if kafka_jars.jars_ready(settings.kafka_libs):
        _say(f"kafka jars: cached in {settings.kafka_libs}")
    else:
        with _err.status(f"fetching the Kafka jars from Maven Central into {settings.kafka_libs} ..."):
            kafka_jars.ensure_kafka_jars(settings.kafka_libs)
        _say(f"kafka jars: downloaded into {settings.kafka_libs}")
    missing = install.missing_tools()
    for tool in install.TOOLS:
        if tool not in missing:
            _say(f"{tool.binary}: {shutil.which(tool.binary)}")
    if missing:
        names = ", ".join(f"{t.binary} ({t.why})" for t in missing)
        packages = [p for t in missing for p in t.packages]
        _say(f"missing: {names} -> installing Debian packages {' '.join(packages)}")
        with _err.status("apt-get ..."):
            install.apt_install(packages, _say)
    _say("setup: done")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    _quiet_clients()
    from services.stack import stack

    if args.redis_cluster:  # through the environment, so the supervisor `up` starts sees it too
        os.environ["JOURNEYS_REDIS_CLUSTER"] = "1"
    settings = StackSettings()
    with _err.status("starting the local stack ...") as spinner:

        def say(line: str) -> None:
            _err.print(line)
            spinner.update(line)

        if args.supervise and args.infra_only:
            raise UserError("--supervise watches the services; it cannot go with --infra-only")
        stack.up(settings, infra_only=args.infra_only, supervise=args.supervise, say=say)
    _print_status(stack.status(settings))
    return 0


def cmd_supervise(args: argparse.Namespace) -> int:
    from services.stack.supervisor import Supervisor

    return Supervisor(StackSettings()).run()


def cmd_down(args: argparse.Namespace) -> int:
    _quiet_clients()
    from services.stack import stack

    stopped = stack.down(StackSettings(), say=_say)
    _say(f"stopped: {', '.join(stopped) or 'nothing'}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _quiet_clients()
    from services.stack import stack

    report = stack.status(StackSettings())
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_status(report)
    healthy = report["kafka"]["healthy"] and report["redis"]["healthy"]
    return 0 if healthy and all(p["healthy"] for p in report["processes"]) else 1


def _print_status(report: dict[str, Any]) -> None:
    from rich.table import Table

    def mark(ok: bool) -> str:
        return "[green]healthy[/]" if ok else "[red]down[/]"

    out = Console(highlight=False)
    out.print(f"kafka  {report['kafka']['bootstrap_servers']:<28} {mark(report['kafka']['healthy'])}")
    out.print(f"redis  {report['redis']['url']:<28} {mark(report['redis']['healthy'])}")
    out.print(f"api    {report['api']['base_url']}")
    if report["processes"]:
        table = Table("process", "pid", "health", "restarts", "log")
        for p in report["processes"]:
            table.add_row(
                p["name"], str(p["pid"] or "-"), mark(p["healthy"]), str(p.get("restarts", 0)), p["log"]
            )
        out.print(table)


def cmd_env(args: argparse.Namespace) -> int:
    from services.stack import envdoc

    print(envdoc.markdown() if args.markdown else envdoc.plain())
    return 0
