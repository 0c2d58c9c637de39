"""``journeys simulate | replay | evaluate | demo``: the simulator's commands (thin: parse, call, print)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from services.common.errors import UserError
from services.common.settings import env_help
from services.common.timeutil import format_ms, now_ms, parse_duration_ms, parse_rfc3339_ms
from services.simulator.generator import DEFAULT_START, SimConfig
from services.stack.endpoints import client_settings
from services.stack.settings import StackSettings

RAW = argparse.RawDescriptionHelpFormatter


def quiet_kafka() -> None:
    """kafka-python logs every connection at INFO; our commands show progress bars instead."""
    logging.getLogger("kafka").setLevel(logging.ERROR)


def _duration(text: str) -> int:
    try:
        return parse_duration_ms(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _instant(text: str) -> int:
    try:
        return parse_rfc3339_ms(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time with an offset: {text!r} ({exc})") from None


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


def add_population_args(p: argparse.ArgumentParser, customers: int = 200) -> None:
    g = p.add_argument_group("population")
    g.add_argument(
        "--customers", type=int, default=customers, help="customers to simulate (default %(default)s)"
    )
    g.add_argument("--seed", type=int, default=42, help="same seed, same bytes (default %(default)s)")
    g.add_argument(
        "--start",
        type=_instant,
        default=parse_rfc3339_ms(DEFAULT_START),
        help=f"simulated start time, RFC 3339 (default {DEFAULT_START})",
    )
    g.add_argument("--span", type=_duration, default=7 * 86_400_000, help="simulated time span (default 7d)")
    g.add_argument(
        "--late", type=_fraction, default=0.05, help="share of events delivered late (default 0.05)"
    )
    g.add_argument("--duplicates", type=_fraction, default=0.02, help="share delivered twice (default 0.02)")
    g.add_argument(
        "--malformed",
        type=_fraction,
        default=0.01,
        help="malformed records per event, for the DLQ (default 0.01)",
    )
    g.add_argument(
        "--junk",
        type=_fraction,
        default=0.1,
        help="share of customers given shared junk identifiers (default 0.1)",
    )
    g.add_argument("--incidents", type=int, default=1, help="injected drop-off incidents (default 1)")
    g.add_argument(
        "--lateness",
        type=_duration,
        default=300_000,
        help="detector watermark lateness; out-of-order displacement stays below it (default 5m)",
    )
    g.add_argument(
        "--definitions",
        type=Path,
        default=None,
        help="journey definitions file (default: the bundled default_journeys.yaml)",
    )


def config_from(args: argparse.Namespace) -> SimConfig:
    if args.customers < 1:
        raise UserError("--customers must be at least 1")
    return SimConfig(
        customers=args.customers,
        seed=args.seed,
        start_ms=args.start,
        span_ms=args.span,
        late=args.late,
        duplicates=args.duplicates,
        malformed=args.malformed,
        junk=args.junk,
        incidents=args.incidents,
        lateness_ms=args.lateness,
    )


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add simulate, replay, evaluate and demo to ``journeys``."""
    epilog = env_help(StackSettings)
    p = sub.add_parser(
        "simulate",
        help="generate a simulated population with ground truth",
        description="Generate persona-driven multi-channel journeys (channel_event.v1) and a "
        "ground-truth file, to a JSONL file or to the channel-events topic.",
        epilog=epilog,
        formatter_class=RAW,
    )
    add_population_args(p)
    out = p.add_argument_group("output")
    dest = out.add_mutually_exclusive_group(required=True)
    dest.add_argument("--out", type=Path, help="write records to this JSONL file")
    dest.add_argument("--kafka", action="store_true", help="produce to JOURNEYS_TOPIC_CHANNEL_EVENTS")
    out.add_argument("--truth", type=Path, help="ground-truth file (default: <out>.truth.json or truth.json)")
    out.add_argument(
        "--rate", type=float, default=0.0, help="Kafka: at most this many events/s (0: no limit)"
    )
    out.add_argument(
        "--compression",
        type=float,
        default=0.0,
        help="Kafka: simulated seconds per real second (1440 = a day a minute; 0: no pacing)",
    )
    p.set_defaults(func=_simulate)

    p = sub.add_parser(
        "replay",
        help="send a JSONL file of records to channel-events",
        description="Replay a JSONL file ({key, value} / {key, raw} lines or bare channel "
        "events) to the channel-events topic, keeping keys. Bad lines are "
        "reported and skipped.",
        epilog=epilog,
        formatter_class=RAW,
    )
    p.add_argument("file", type=Path)
    p.add_argument("--rate", type=float, default=0.0, help="at most this many records/s (0: no limit)")
    p.add_argument("--topic", help="target topic (default JOURNEYS_TOPIC_CHANNEL_EVENTS)")
    p.set_defaults(func=_replay)

    from services.simulator import demo, evaluate_cmd

    evaluate_cmd.register(sub, epilog)
    demo.register(sub)


def _simulate(args: argparse.Namespace) -> int:
    from services.simulator.run import simulate_to_file, simulate_to_kafka

    quiet_kafka()
    cfg = config_from(args)
    _warn_about_time(cfg)
    if args.out is not None:
        truth_path = args.truth or args.out.with_name(args.out.name.removesuffix(".jsonl") + ".truth.json")
        summary = simulate_to_file(cfg, args.definitions, args.out, truth_path)
    else:
        truth_path = args.truth or Path("truth.json")
        summary = simulate_to_kafka(
            cfg, args.definitions, client_settings(), truth_path, args.rate, args.compression
        )
    print(summary)
    return 0


def _warn_about_time(cfg: SimConfig) -> None:
    """The stitcher dead-letters events > 5 min ahead or > 365 days old (by the wall clock). Generation
    never reads the clock; this check only warns."""
    end, now = cfg.start_ms + cfg.span_ms, now_ms()
    if end > now + 300_000:
        print(
            f"warning: simulated time runs until {format_ms(end)}, after now: the stitcher dead-letters "
            "events more than 5 min in the future (pass --start)",
            file=sys.stderr,
        )
    elif cfg.start_ms < now - 365 * 86_400_000:
        print(
            "warning: simulated time starts more than 365 days ago: the stitcher dead-letters such "
            "events (pass --start)",
            file=sys.stderr,
        )


def _replay(args: argparse.Namespace) -> int:
    from services.simulator.run import replay_file

    quiet_kafka()
    report = replay_file(args.file, client_settings(), args.topic, args.rate)
    if report.bad_lines:
        shown = ", ".join(str(n) for n in report.bad_lines[:20])
        more = f" (+{len(report.bad_lines) - 20} more)" if len(report.bad_lines) > 20 else ""
        first = report.reasons[report.bad_lines[0]]
        print(
            f"{len(report.bad_lines)} bad line(s) skipped: {shown}{more}; "
            f"line {report.bad_lines[0]}: {first}",
            file=sys.stderr,
        )
    print(f"replayed {report.good} record(s) from {args.file}")
    return 0
