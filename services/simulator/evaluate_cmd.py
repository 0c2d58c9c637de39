"""``journeys evaluate``: read gap-alerts and stitched-events back, resolve aliases, score them."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from services.common.errors import UserError
from services.common.keys import Keys
from services.common.redis_conn import connect_sync, redact
from services.common.settings import CommonSettings
from services.simulator import collect
from services.simulator import truth as truth_mod
from services.simulator.evaluate import Report, evaluate
from services.stack.endpoints import client_settings


def register(sub: argparse._SubParsersAction[Any], epilog: str) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score the pipeline's alerts and stitching against a ground truth",
        description="Read gap-alerts and stitched-events from the beginning until idle, "
        "resolve merged customer ids through Redis and compare with the ground "
        "truth of `journeys simulate`. Exits 1 below a threshold.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--truth", type=Path, required=True, help="ground-truth file written by `journeys simulate`"
    )
    p.add_argument(
        "--population",
        type=Path,
        default=None,
        help="the records file of `journeys simulate`: expected stalls are recomputed at the detector's "
        "watermark (needed with the live clock, where the wall clock says which stalls are due)",
    )
    p.add_argument(
        "--idle", type=float, default=5.0, help="stop reading a topic after this many idle seconds"
    )
    p.add_argument(
        "--max-wait", type=float, default=180.0, help="give up reading a topic after this many seconds"
    )
    p.add_argument("--min-precision", type=float, default=0.0, help="fail when any type's precision is lower")
    p.add_argument("--min-recall", type=float, default=0.0, help="fail when any type's recall is lower")
    p.add_argument("--max-false-merges", type=int, default=None, help="fail above this many false merges")
    p.add_argument("--min-accuracy", type=float, default=0.0, help="fail below this stitching accuracy")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    p.set_defaults(func=run)


def collect_report(truth: dict[str, Any], settings: CommonSettings, idle: float, max_wait: float) -> Report:
    import redis

    from services.common.kafka_config import kafka_python_config

    bootstrap, sec = settings.kafka_bootstrap_servers, kafka_python_config(settings)
    alerts = collect.decode_all(
        collect.read_topic(
            bootstrap, settings.topic_gap_alerts, idle_s=idle, max_wait_s=max_wait, security=sec
        )
    )
    stitched = collect.decode_all(
        collect.read_topic(
            bootstrap, settings.topic_stitched_events, idle_s=idle, max_wait_s=max_wait, security=sec
        )
    )
    client = connect_sync(settings.redis_url)
    keys = Keys(settings.key_prefix)
    try:
        final = collect.stitched_customers(stitched, client, keys)
        store = collect.timelines(client, keys, final.values())
    except redis.RedisError as exc:
        where = redact(settings.redis_url)
        raise UserError(f"cannot read the journey store in Redis at {where}: {exc}") from None
    finally:
        client.close()
    report = evaluate(truth, alerts, final, store)
    report.dead_letters = collect.count_topic(bootstrap, settings.topic_dlq, sec)
    return report


def render(report: Report, console: Console) -> None:
    table = Table(title="Gap alerts vs ground truth")
    for col in ("type", "expected", "raised", "matched", "precision", "recall"):
        table.add_column(col, justify="left" if col == "type" else "right")
    for s in report.types.values():
        style = "" if min(s.precision, s.recall) >= 0.99 else "red"
        table.add_row(
            s.type,
            str(s.expected),
            str(s.raised),
            str(s.matched_expected),
            f"{s.precision:.4f}",
            f"{s.recall:.4f}",
            style=style,
        )
    console.print(table)
    st = report.stitching
    t2 = Table(title="Stitching")
    cols = (
        "events",
        "seen",
        "accuracy",
        "false merges",
        "missed merges",
        "true customers",
        "found",
        "in store",
    )
    for col in cols:
        t2.add_column(col, justify="right")
    t2.add_row(
        str(st.events),
        str(st.seen),
        f"{st.accuracy:.4f}",
        str(st.false_merges),
        str(st.missed_merges),
        str(st.customers_true),
        str(st.customers_found),
        "-" if st.in_journey_store is None else str(st.in_journey_store),
    )
    console.print(t2)
    if report.dead_letters is not None:
        console.print(
            f"dead letters on the DLQ: {report.dead_letters} (malformed records sent: "
            f"{report.malformed_sent if report.malformed_sent is not None else 'unknown'})"
        )
    for s in report.types.values():
        if s.missed:
            console.print(f"[yellow]{s.type}: missed e.g. {', '.join(s.missed[:5])}")
        if s.unexpected:
            console.print(f"[yellow]{s.type}: unexpected e.g. {', '.join(s.unexpected[:5])}")


def detector_watermark(settings: CommonSettings) -> int:
    """The detector's event-time watermark (ms) in Redis; a one-line UserError when there is none."""
    import redis

    client = connect_sync(settings.redis_url)
    try:
        wm = client.get(Keys(settings.key_prefix).watermark)
    except redis.RedisError as exc:
        raise UserError(
            f"cannot read the detector's watermark in Redis at {redact(settings.redis_url)}: {exc}"
        ) from None
    finally:
        client.close()
    if wm is None:
        raise UserError("the detector has no watermark yet: nothing is proven, no stall can be due")
    return int(wm)


def truth_at_detector_watermark(truth: dict[str, Any], population: Path, wm: int) -> dict[str, Any]:
    from services.gap_detector.core.definitions import load_definitions

    try:
        lines = population.read_bytes().splitlines()
    except OSError as exc:
        raise UserError(f"cannot read population {population}: {exc.strerror or exc}") from None
    records = (orjson.loads(line) for line in lines if line.strip())
    return truth_mod.at_watermark(truth, records, load_definitions(), wm)


def report_at_watermark(
    truth: dict[str, Any], population: Path, settings: CommonSettings, idle: float, max_wait: float
) -> Report:
    """The report against the stalls due at the detector's watermark, read until the watermark is the same
    before and after the alerts were read: a watermark that moved meanwhile (the detector still catching
    up) makes stalls due that the first reading did not expect, so the alerts are read again."""
    deadline = time.monotonic() + max_wait
    while True:
        wm = detector_watermark(settings)
        report = collect_report(truth_at_detector_watermark(truth, population, wm), settings, idle, max_wait)
        if detector_watermark(settings) == wm or time.monotonic() > deadline:
            return report


def run(args: argparse.Namespace) -> int:
    from services.simulator.cli import quiet_kafka

    quiet_kafka()
    truth = truth_mod.load(args.truth)
    console = Console()
    with console.status("reading gap-alerts and stitched-events until idle…"):
        if args.population is not None:
            report = report_at_watermark(truth, args.population, client_settings(), args.idle, args.max_wait)
        else:
            report = collect_report(truth, client_settings(), args.idle, args.max_wait)
    max_fm = args.max_false_merges if args.max_false_merges is not None else 1 << 62
    failures = report.failures(args.min_precision, args.min_recall, max_fm, args.min_accuracy)
    if args.json:
        print(orjson.dumps({**report.to_json(), "failures": failures}, option=orjson.OPT_INDENT_2).decode())
    else:
        render(report, console)
        for f in failures:
            console.print(f"[red]below threshold: {f}")
    return 1 if failures else 0
