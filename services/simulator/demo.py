"""``journeys demo``: set up, start the stack and services, stream a live simulated population with
compressed time and show what the pipeline makes of it. Stops what it started on Ctrl-C / SIGTERM /
``--duration``.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from typing import Any

from rich.console import Console
from rich.live import Live

from services.common.settings import env_help
from services.common.timeutil import now_ms
from services.simulator.generator import SimConfig
from services.simulator.live_view import LiveStats, render, summary_line

DAY_MS = 86_400_000


def register(sub: argparse._SubParsersAction[Any]) -> None:
    from services.stack.settings import StackSettings

    p = sub.add_parser(
        "demo",
        help="the whole system live: stack, services, a simulated population",
        description="Set up what is missing, start Kafka, Redis, the stitcher, the gap detector "
        "and the API (event-time clock), stream a simulated population with "
        "compressed time and show throughput, journeys, merges and alerts live. "
        "Ctrl-C stops everything the demo started.",
        epilog=env_help(StackSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--customers", type=int, default=300, help="customers to simulate (default %(default)s)")
    p.add_argument("--span-days", type=float, default=3.0, help="simulated days, ending now (default 3)")
    p.add_argument(
        "--compression",
        type=float,
        default=4320.0,
        help="simulated seconds per real second (default 4320: 3 days a minute)",
    )
    p.add_argument("--rate", type=float, default=0.0, help="at most this many events/s (default: no limit)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: a new one each run)")
    p.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="stop after this many seconds (default: when the stream is done and alerts settle)",
    )
    p.add_argument(
        "--no-live", action="store_true", help="plain progress lines instead of the live view (CI)"
    )
    p.add_argument("--no-setup", action="store_true", help="skip `journeys setup`")
    p.add_argument("--keep-running", action="store_true", help="leave the stack running afterwards")
    p.set_defaults(func=run)


class Stopper:
    """Ctrl-C and SIGTERM both end the demo through the same clean path."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.event.set())

    def __call__(self) -> bool:
        return self.event.is_set()


def _consume(
    bootstrap: str, topics: dict[str, str], stats: LiveStats, stop: Stopper, security: dict[str, Any]
) -> None:
    """Follow the output topics from their current end (old runs are not shown)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap.split(","),
        group_id=None,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        **security,  # TLS/SASL of an external cluster (services.common.kafka_config.kafka_python_config)
    )
    try:
        while not stop():
            for tp, records in consumer.poll(timeout_ms=250).items():
                for r in records:
                    stats.on_record(topics[tp.topic], r.value)
    finally:
        consumer.close()


def run(args: argparse.Namespace) -> int:
    from services.simulator.cli import quiet_kafka
    from services.stack import stack
    from services.stack.settings import StackSettings

    quiet_kafka()
    console = Console()
    stop = Stopper()
    stop.install()
    os.environ["JOURNEYS_TIMER_CLOCK"] = "event"  # the services `up` starts inherit it
    settings = StackSettings()
    if not args.no_setup:
        _setup()
    with console.status("starting the local stack and the services…") as status:
        result = stack.up(settings, say=lambda line: status.update(line))
    if "detector" not in result.started and "detector" not in result.skipped:
        # A detector started earlier may run on the wall clock, which fires compressed-time stalls early.
        console.print(
            "note: the gap detector was already running; for compressed time it needs "
            "JOURNEYS_TIMER_CLOCK=event (`journeys down`, then `journeys demo`)"
        )
    urls = [
        ("agent page", f"{settings.api_base_url}/agent"),
        ("journey map", f"{settings.api_base_url}/map"),
        ("api metrics", f"{settings.api_base_url}/metrics"),
        ("stitcher", f"http://{settings.metrics_host}:{settings.stitcher_metrics_port}/metrics"),
        ("detector", f"http://{settings.metrics_host}:{settings.detector_metrics_port}/metrics"),
    ]
    stream: Stream | None = None
    try:
        stream = Stream(args, settings, result.bootstrap_servers, stop)
        _watch(args, console, stream.stats, urls, stream.sender, stop)
        stream.close()
        console.print(summary_line(stream.stats))
        for name, url in urls:
            console.print(f"{name}: {url}")
    except KeyboardInterrupt:
        console.print("interrupted")
    finally:
        stop.event.set()
        if stream is not None:
            stream.close()
        if args.keep_running:
            console.print("leaving the stack running (`journeys down` stops it)")
        elif result.started:
            with console.status("stopping what the demo started…"):
                stack.stop_started(settings, result.started)
            console.print(f"stopped: {', '.join(result.started)}")
    return 0


class Stream:
    """The simulated population, sent by one thread and followed on the output topics by another."""

    def __init__(self, args: argparse.Namespace, settings: Any, bootstrap: str, stop: Stopper) -> None:
        from services.common.kafka_config import kafka_python_config
        from services.simulator.run import build
        from services.simulator.streaming import Pacer, make_producer, send_all

        seed = args.seed if args.seed is not None else now_ms() % 1_000_000
        span = int(args.span_days * DAY_MS)
        # Simulated time ends now, so no event is in the future (the stitcher rejects those); the
        # namespace keeps this run's identifiers apart from earlier runs in the same Redis.
        cfg = SimConfig(
            customers=args.customers, seed=seed, start_ms=now_ms() - span, span_ms=span, namespace=f"d{seed}"
        )
        pop, _ = build(cfg, None)
        self.stats = LiveStats(total=len(pop.records))
        topics = {
            settings.topic_stitched_events: "stitched",
            settings.topic_identity_merges: "merges",
            settings.topic_gap_alerts: "alerts",
        }
        sec = kafka_python_config(settings)
        threading.Thread(
            target=_consume, args=(bootstrap, topics, self.stats, stop, sec), daemon=True
        ).start()
        self.producer = make_producer(bootstrap, sec)
        items = ((r.key.encode(), r.payload(), r.arrival_ms) for r in pop.records)

        def one() -> None:
            self.stats.sent += 1

        pacer = Pacer(args.rate, args.compression)
        self.sender = threading.Thread(
            target=send_all,
            args=(self.producer, settings.topic_channel_events, items, pacer, one, stop),
            daemon=True,
        )
        self.sender.start()
        self._stop = stop
        self._closed = False

    def close(self) -> None:
        """Stop sending, then close the producer (never under the sender's feet)."""
        if self._closed:
            return
        self._closed = True
        self._stop.event.set()
        self.sender.join(timeout=10)
        self.producer.close(timeout=5)


def _watch(
    args: argparse.Namespace,
    console: Console,
    stats: LiveStats,
    urls: list[tuple[str, str]],
    sender: threading.Thread,
    stop: Stopper,
) -> None:
    """Refresh the view until --duration, or until the stream is sent and no new alert came for 10 s."""
    began = time.monotonic()
    quiet_since: float | None = None
    last_alerts = -1

    def done() -> bool:
        nonlocal quiet_since, last_alerts
        now = time.monotonic()
        if stop() or (args.duration and now - began >= args.duration):
            return True
        if args.duration or sender.is_alive():
            return False
        total = sum(stats.alerts.values())
        if total != last_alerts:
            last_alerts, quiet_since = total, now
        return quiet_since is not None and now - quiet_since >= 10

    note = "Ctrl-C stops everything the demo started"
    if args.no_live or not console.is_terminal:  # a log file gets a line every 5 s, not a live panel's frames
        next_line = 0.0
        while not done():
            if time.monotonic() >= next_line:
                console.print(summary_line(stats))
                next_line = time.monotonic() + 5
            stop.event.wait(0.25)
        return
    with Live(render(stats, urls, note), console=console, refresh_per_second=4) as live:
        while not done():
            live.update(render(stats, urls, note))
            stop.event.wait(0.25)


def _setup() -> None:
    """`journeys setup` (idempotent) when the foundation's command is there."""
    try:
        from services.cli import stack_cmd
    except ImportError:
        return
    setup = getattr(stack_cmd, "cmd_setup", None)
    if setup is not None:
        setup(argparse.Namespace())
