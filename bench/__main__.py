"""One benchmark run of the whole pipeline, with ratios: `python -m bench [--events N] ...`.

Against the Kafka and Redis named by KAFKA_BOOTSTRAP_SERVERS and REDIS_URL (default: the local stack,
127.0.0.1:39092 and redis://127.0.0.1:36379/0), on fresh topics and a fresh key prefix:

1. produce N channel events (~460 bytes, 2-3 identifiers each, merges among them) to a fresh topic;
2. bare loops over that topic: confluent-kafka (Consumer.consume + orjson) and aiokafka (getmany +
   orjson): events/s and CPU µs per event, the ceiling every worker is compared with;
3. one `journeys stitcher` worker in its default configuration, from its first batch until all N events
   are in the journey store (journeys_touchpoints_written_total): events/s, worker CPU µs/event
   (/proc/<pid>/stat), Redis CPU µs/event (INFO cpu used_cpu_user + used_cpu_sys, delta / events);
4. one `journeys detector` over the stitched events the stitcher produced, until it has consumed them
   all (journeys_batch_size_sum{stage="rules"}): events/s, worker and Redis CPU µs/event;
5. both running, --rate events/s for --seconds with live event times: p50/p99 of produce -> journey store
   (the stitcher's journeys_end_to_end_latency_seconds{step="journey"}) and produce -> channel-switch
   alert (timed here: send of the trigger event -> the alert read from gap-alerts);
6. one table of every figure with its target (issue 9), appended to bench/results/<UTC date>.md with the
   command, the machine and the load average before and after.

Topics, consumer groups and Redis keys of the run are deleted at the end unless --keep. The workers get
no JOURNEYS_* variable from the calling shell, only the run's topics, prefix, groups and ports (and
--worker-env, which the results record). CPU per event is what to compare on a shared machine: events/s
depends on who else is running; the ratios to the bare loop come from the same run.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

from bench import kafka_io, live, report
from bench.kafka_io import Pace
from bench.promtext import Sample, histogram_quantiles
from bench.run import Run, advance, bar, console, quiet, settled_count
from bench.stitcher.events import events
from bench.workers import ROOT, Worker, wait_until
from services.common.timeutil import now_ms

WRITTEN = "journeys_touchpoints_written_total"
RULES = ("journeys_batch_size_sum", {"stage": "rules"})
LATENCY = "journeys_end_to_end_latency_seconds"


EPILOG = """environment:
  KAFKA_BOOTSTRAP_SERVERS  Kafka of the run (default 127.0.0.1:39092, the local stack)
  REDIS_URL                Redis of the run (default redis://127.0.0.1:36379/0); point it at a private
                           redis-server for a Redis CPU figure no other client disturbs
"""


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, epilog=EPILOG, formatter_class=Formatter
    )
    ap.add_argument("--events", type=int, default=1_000_000, help="channel events of the throughput phases")
    ap.add_argument(
        "--customers", type=int, default=None, help="customers they belong to (None: events / 10)"
    )
    ap.add_argument("--partitions", type=int, default=4, help="partitions of every topic of the run")
    ap.add_argument("--rate", type=int, default=5000, help="events/s of the latency phase (0: skip it)")
    ap.add_argument("--seconds", type=int, default=20, help="length of the latency phase")
    ap.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for both workers, recorded with the results (repeatable)",
    )
    ap.add_argument(
        "--results",
        default=None,
        help="results file to append to ('' for none; None: bench/results/<UTC date>.md)",
    )
    ap.add_argument(
        "--code",
        type=Path,
        default=ROOT,
        metavar="DIR",
        help="checkout whose services the workers run (e.g. a git worktree of an older commit, "
        "to measure it with this benchmark)",
    )
    ap.add_argument(
        "--own-redis",
        action="store_true",
        help="start a private redis-server for the run (the stack's flags), so the Redis CPU "
        "figures hold only this run's work; default: REDIS_URL, shared with others",
    )
    ap.add_argument("--keep", action="store_true", help="keep the run's topics, groups and Redis keys")
    args = ap.parse_args(argv)
    args.customers = args.customers or max(1, args.events // 10)
    return args


def throughput(run: Run) -> report.Figures:
    args, n = run.args, run.args.events
    with console.status(f"generating {n:,} events for {args.customers:,} customers"):
        values = live.compact(events(n, args.customers, now_ms() - 3 * 3_600_000, span_ms=3_600_000))
    size = sum(map(len, values)) / n
    src = run.topic["channel-events"]
    with bar() as progress:
        task = progress.add_task("producing", total=n)
        took = kafka_io.produce_all(run.bootstrap, src, values, advance(progress, task))
    del values
    if (on_topic := run.topics.count(src)) != n:
        raise SystemExit(f"{on_topic:,} events on {src}, expected {n:,}")
    console.print(f"produced {n:,} events of {size:.0f} bytes avg in {took:.1f}s")

    paces: dict[str, Pace | None] = {}
    for name, loop in (("confluent-kafka", kafka_io.bare_confluent), ("aiokafka", kafka_io.bare_aiokafka)):
        try:
            with bar() as progress:
                task = progress.add_task(f"bare {name} loop", total=n)
                pace = loop(run.bootstrap, src, args.partitions, n, advance(progress, task))
        except ImportError:  # aiokafka is a test extra
            console.print(f"[yellow]{name} is not installed: its bare loop is skipped")
            paces[name] = None
            continue
        paces[name] = pace
        console.print(f"bare {name} + orjson loop: {pace.rate:,.0f} events/s, {pace.cpu_us:.1f} µs CPU/event")
    ck = paces["confluent-kafka"]
    assert ck is not None

    background = run.redis_background()
    stitcher = run.start("stitcher", "JOURNEYS_STITCHER_METRICS_PORT")
    st, st_redis, st_stages = run.measure(stitcher, (WRITTEN, None), n, "stitcher", 180 + n / 1000)
    console.print(
        f"stitcher: {st.rate:,.0f} events/s, {st.cpu_us:.1f} µs worker CPU/event, "
        f"{st_redis:.1f} µs Redis CPU/event"
    )
    fig = report.Figures(
        n,
        args.customers,
        args.partitions,
        ck,
        paces["aiokafka"],
        st,
        st_redis,
        stitcher.total("journeys_merges_total"),
        0,
        redis_background=background,
        stitcher_stages=st_stages,
    )
    fig.stitched = settled_count(run, run.topic["stitched-events"], n)

    detector = run.start("detector", "JOURNEYS_DETECTOR_METRICS_PORT")
    fig.detector, fig.detector_redis_us, fig.detector_stages = run.measure(
        detector, RULES, fig.stitched, "detector", 180 + fig.stitched / 1000
    )
    console.print(
        f"detector: {fig.detector.rate:,.0f} events/s, {fig.detector.cpu_us:.1f} µs worker "
        f"CPU/event, {fig.detector_redis_us:.1f} µs Redis CPU/event"
    )
    return fig


def latency(run: Run, fig: report.Figures) -> None:
    args = run.args
    stitcher, detector = run.workers
    before_st, before_det = latencies(stitcher), latencies(detector)
    alerts = run.topic["gap-alerts"]
    reader = live.AlertReader(run.bootstrap, alerts, run.topics.ends(alerts))
    reader.start()
    sent: dict[str, float] = {}
    stitched_before = run.topics.count(run.topic["stitched-events"])
    try:
        with bar() as progress:
            task = progress.add_task(f"steady {args.rate:,}/s", total=args.rate * args.seconds)
            fig.achieved_rate = live.steady(
                run.bootstrap,
                run.topic["channel-events"],
                args.rate,
                args.seconds,
                args.customers,
                sent,
                advance(progress, task),
            )
        n = args.rate * args.seconds
        wait_until(lambda: stitcher.total(WRITTEN) >= args.events + n, "the stitcher to catch up", 300)
        stitched = settled_count(run, run.topic["stitched-events"], stitched_before + n)
        wait_until(lambda: detector.total(*RULES) >= stitched, "the detector to catch up", 300)
        ends = quiet(lambda: run.topics.ends(alerts))
        wait_until(lambda: reader.reached(ends), "the alert reader", 60)
    finally:
        reader.stop.set()
        reader.join(timeout=10)
    after_st, after_det = latencies(stitcher), latencies(detector)
    fig.rate = args.rate
    fig.journey_ms = _ms(histogram_quantiles(before_st, after_st, LATENCY, {"step": "journey"}, (0.5, 0.99)))
    fig.alert_ms = _ms(histogram_quantiles(before_det, after_det, LATENCY, {"step": "alert"}, (0.5, 0.99)))
    switches = reader.latencies_ms("channel_switch", sent)
    fig.switches = len(switches)
    fig.switch_ms = (live.percentile(switches, 0.5), live.percentile(switches, 0.99))


def notes(fig: report.Figures, args: argparse.Namespace) -> list[str]:
    out = [
        "Events/s and latency depend on what else runs on the machine (see the load average); CPU µs per "
        "event and the ratios to the bare loops of the same run are the comparable figures.",
        "Redis CPU per event is INFO cpu (used_cpu_user + used_cpu_sys) over the phase / its events; "
        + (
            "a private redis-server of this run (--own-redis)."
            if args.own_redis
            else f"the server is shared, and other clients used {fig.redis_background:.1%} of a core just "
            "before the stitcher started, which that figure includes too (--own-redis avoids it)."
        ),
    ]
    if args.events < 1_000_000:
        out.append("The throughput target is set for 1M events; this run used fewer.")
    if fig.stitched != fig.events:
        out.append(f"stitched-events held {fig.stitched:,} records after {fig.events:,} channel events.")
    if args.rate:
        out.append(
            "produce -> journey store: the stitcher's own histogram (Kafka CreateTime of the channel "
            "event -> journey written). produce -> channel-switch alert: timed by the benchmark, from "
            "handing the trigger event to the producer to reading the alert from gap-alerts."
        )
        if fig.achieved_rate < 0.95 * args.rate:
            out.append(f"The producer reached only {fig.achieved_rate:,.0f} of {args.rate:,} events/s.")
    return out


def latencies(worker: Worker) -> dict[Sample, float]:
    """The worker's latency histogram once its last batch has observed into it."""
    return quiet(lambda: {k: v for k, v in worker.metrics().items() if k[0].startswith(LATENCY)})


def _ms(pair: list[float]) -> tuple[float, float]:
    return (pair[0] * 1000, pair[1] * 1000)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    run = Run(args)
    load_before = report.loadavg()
    console.print(f"run {run.tag}: Kafka {run.bootstrap}, Redis {run.redis_url}, load {load_before}")
    run.topics.create(run.topic.values(), args.partitions)
    try:
        fig = throughput(run)
        if args.rate > 0:
            latency(run, fig)
    finally:
        run.cleanup()
    load_after = report.loadavg()
    rows = report.rows(fig)
    fig.notes += notes(fig, args)
    title = (
        f"{args.events:,} events, {args.customers:,} customers, {args.partitions} partitions, "
        f"1 stitcher + 1 detector; load {load_before} -> {load_after}"
    )
    console.print(report.table(title, rows))
    redis_of_run = "a private redis-server (--own-redis)" if args.own_redis else run.redis_url
    header = [
        f"machine: {report.machine()}; Kafka {run.bootstrap}, Redis {redis_of_run}",
        f"services: {report.code_version(args.code.resolve())}; workers in their default configuration"
        + (f" plus {', '.join(args.worker_env)}" if args.worker_env else ""),
        f"load average (1, 5, 15 min) before: {load_before}; after: {load_after}",
        f"{args.events:,} events ({args.customers:,} customers), {args.partitions} partitions",
    ]
    results = (
        Path(args.results)
        if args.results
        else (ROOT / "bench" / "results" / f"{time.strftime('%Y-%m-%d', time.gmtime())}.md")
    )
    if args.results != "":
        report.append(results, command, header, rows, fig.notes)
        console.print(f"appended to {results}")
    if any(math.isnan(x) for x in fig.journey_ms) and args.rate:
        console.print(f'[yellow]no {LATENCY}{{step="journey"}} observations from the stitcher')


if __name__ == "__main__":
    main()
