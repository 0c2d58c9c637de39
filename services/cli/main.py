"""The ``journeys`` command. Each area registers its own sub-commands, so this file stays small."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from services.common import logs
from services.common.errors import UserError

# Modules exposing ``register(subparsers)``; each owns its commands.
COMMAND_MODULES = (
    "services.cli.stack_cmd",  # up, down, status, setup
    "services.stitcher.cli",  # stitcher (run the worker)
    "services.gap_detector.cli",  # detector (run the worker)
    "services.api.cli",  # api (run the HTTP API)
    "services.journey_map.cli",  # map (run the journey-map worker)
    "services.simulator.cli",  # simulate, replay, evaluate, demo
)


# The long-running services: they log to JOURNEYS_LOG_FILE (rotated) when it is set.
SERVICES = frozenset({"stitcher", "detector", "api", "map", "supervise"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="journeys",
        description="Real-time customer-journey stitching: local stack, services, simulator and tools.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(to_file=args.command in SERVICES)
    try:
        rc = args.func(args)
    except UserError as exc:
        print(f"journeys: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `journeys env | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
