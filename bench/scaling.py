"""Scaling out: 1, 2 and 3 workers per service on a single Redis and on a 3-master Redis Cluster.

    .venv/bin/python -m bench.scaling [--events 100000] [--workers 1,2,3] [--redis single,cluster]
        [--partitions 6] [--results bench/results/<UTC date>.md]

Against the Kafka of KAFKA_BOOTSTRAP_SERVERS (default: the local stack). Every Redis is private to the run
(the stack's flags: append-only file, fsync every second), so its CPU figure holds this run's work only;
the cluster's is the sum over its nodes. The events are produced once (bench/stitcher/events.py, merges
among them); then, per Redis and per worker count, on a fresh key prefix, consumer groups and output topics:

1. N `journeys stitcher` processes in one group, from the first batch until the journey store holds every
   event (the sum of journeys_touchpoints_written_total): events/s, worker CPU µs/event (all N
   processes, /proc), Redis CPU µs/event (INFO cpu, all nodes);
2. N `journeys detector` processes over the stitched events, until they consumed them all.

One table, appended to the dated results file with the machine and the load average. On a 2-core machine
more workers cannot add cores: the figures to read are the CPU per event (flat = no scaling tax) and
events/s against the cores in use (docs/stitcher.md, "On Redis Cluster", and the README say what they
predict on a bigger machine).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import kafka_io, live, report
from bench.run import advance, bar, console, own_redis
from bench.stitcher.events import events
from bench.workers import ROOT, Worker, clean_env, free_port, redis_cpu_s, wait_until
from services.common.redis_conn import connect_sync, is_cluster, parse_cluster_url
from services.common.settings import CommonSettings
from services.common.timeutil import now_ms
from services.stack import procs, redis_cluster

WRITTEN = ("journeys_touchpoints_written_total", None)
RULES = ("journeys_batch_size_sum", {"stage": "rules"})


@dataclass(frozen=True)
class Result:
    redis: str
    workers: int
    role: str
    events: int
    wall_s: float
    worker_cpu_s: float
    redis_cpu_s: float

    @property
    def rate(self) -> float:
        return self.events / self.wall_s if self.wall_s else 0.0


def redis_cpu(url: str) -> float:
    """Redis CPU seconds so far: the server's, or the sum over every node of a cluster."""
    if not is_cluster(url):
        client = connect_sync(url)
        try:
            return redis_cpu_s(client)  # type: ignore[arg-type]
        finally:
            client.close()
    total = 0.0
    for host, port in parse_cluster_url(url).nodes:
        client = connect_sync(f"redis://{host}:{port}/0")
        try:
            total += redis_cpu_s(client)  # type: ignore[arg-type]
        finally:
            client.close()
    return total


@contextmanager
def private_redis(kind: str, folder: Path) -> Iterator[str]:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "single":
        proc, url = own_redis(folder)
        try:
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        return
    ports: list[int] = []
    while len(ports) < redis_cluster.NODES:
        port = free_port()
        if port + redis_cluster.BUS_OFFSET < 65536 and procs.port_free(port + redis_cluster.BUS_OFFSET):
            ports.append(port)
    with redis_cluster.running(ports, folder / "cluster") as url:
        yield url


def measure(
    workers: Sequence[Worker], done: tuple[str, dict[str, str] | None], target: int, url: str, what: str
) -> tuple[int, float, float, float]:
    """From the first batch of any worker until their summed counter reaches ``target``: (events, wall s,
    worker CPU s, Redis CPU s)."""
    name, labels = done

    def count() -> float:
        return sum(w.total(name, labels) for w in workers if w.up())

    wait_until(
        lambda: all(w.up() for w in workers) and count() > 0, f"the {what}'s first batch", 180, every_s=0.02
    )
    t0, cpu0, rcpu0, first = time.perf_counter(), sum(w.cpu_s() for w in workers), redis_cpu(url), count()
    with bar() as progress:
        task = progress.add_task(what, total=target)

        def finished() -> bool:
            for w in workers:
                w.check()
            n = count()
            progress.update(task, completed=n)
            return n >= target

        wait_until(finished, f"the {what} to reach {target:,}", 300 + target / 500, every_s=0.5)
    wall = time.perf_counter() - t0
    return int(target - first), wall, sum(w.cpu_s() for w in workers) - cpu0, redis_cpu(url) - rcpu0


def one_config(
    args: argparse.Namespace, topics: kafka_io.Topics, source: str, kind: str, n_workers: int, folder: Path
) -> list[Result]:
    tag = f"scale{uuid.uuid4().hex[:8]}"
    out = {k: f"{tag}-{k}" for k in ("dlq", "stitched-events", "identity-merges", "gap-alerts")}
    common = CommonSettings()
    results = []
    with private_redis(kind, folder / tag) as url:
        env = clean_env(
            {
                "KAFKA_BOOTSTRAP_SERVERS": common.kafka_bootstrap_servers,
                "REDIS_URL": url,
                "JOURNEYS_KEY_PREFIX": tag,
                "JOURNEYS_TOPIC_CHANNEL_EVENTS": source,
                "JOURNEYS_TOPIC_DLQ": out["dlq"],
                "JOURNEYS_TOPIC_STITCHED_EVENTS": out["stitched-events"],
                "JOURNEYS_TOPIC_IDENTITY_MERGES": out["identity-merges"],
                "JOURNEYS_TOPIC_GAP_ALERTS": out["gap-alerts"],
                "JOURNEYS_TOPIC_PARTITIONS": str(args.partitions),
                "JOURNEYS_STITCHER_GROUP": f"{tag}-stitcher",
                "JOURNEYS_DETECTOR_GROUP": f"{tag}-detector",
            }
        )
        topics.create(out.values(), args.partitions)
        started: list[Worker] = []

        def start(role: str, var: str) -> list[Worker]:
            group = []
            for i in range(n_workers):
                w = Worker(role, {**env, var: str(free_port())}, var, folder / f"{tag}-{role}-{i}.log")
                started.append(w)
                group.append(w)
            return group

        try:
            stitchers = start("stitcher", "JOURNEYS_STITCHER_METRICS_PORT")
            what = f"{kind} x{n_workers} stitcher"
            n, wall, cpu, rcpu = measure(stitchers, WRITTEN, args.events, url, what)
            results.append(Result(kind, n_workers, "stitcher", n, wall, cpu, rcpu))
            stitched = topics.count(out["stitched-events"])
            detectors = start("detector", "JOURNEYS_DETECTOR_METRICS_PORT")
            n, wall, cpu, rcpu = measure(detectors, RULES, stitched, url, f"{kind} x{n_workers} detector")
            results.append(Result(kind, n_workers, "detector", n, wall, cpu, rcpu))
        finally:
            for w in started:
                w.stop()
            topics.delete(list(out.values()), [f"{tag}-stitcher", f"{tag}-detector"])
    for r in results[-2:]:
        console.print(
            f"{kind} x{n_workers} {r.role}: {r.rate:,.0f} events/s, "
            f"{r.worker_cpu_s / r.events * 1e6:.1f} µs worker CPU/event, "
            f"{r.redis_cpu_s / r.events * 1e6:.1f} µs Redis CPU/event"
        )
    return results


def rows(results: Sequence[Result]) -> list[report.Row]:
    def per(seconds: float, n: int) -> str:
        return f"{seconds / n * 1e6:.1f} µs" if n else "-"

    return [
        report.Row(
            f"{r.redis} x{r.workers}",
            r.role,
            f"{r.rate:,.0f} events/s; worker {per(r.worker_cpu_s, r.events)}, "
            f"Redis {per(r.redis_cpu_s, r.events)} CPU/event",
        )
        for r in results
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.scaling",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=None, help="default: events / 10")
    ap.add_argument("--workers", default="1,2,3", help="worker counts, comma separated")
    ap.add_argument("--redis", default="single,cluster", help="single, cluster or both")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument(
        "--results", default=None, help="results file ('' for none; default bench/results/<UTC date>.md)"
    )
    args = ap.parse_args(argv)
    args.customers = args.customers or max(1, args.events // 10)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common = CommonSettings()
    topics = kafka_io.Topics(common.kafka_bootstrap_servers)
    source = f"scale{uuid.uuid4().hex[:8]}-channel-events"
    load_before = report.loadavg()
    topics.create([source], args.partitions)
    results: list[Result] = []
    try:
        start = now_ms() - 3 * 3_600_000
        values = live.compact(events(args.events, args.customers, start, span_ms=3_600_000))
        with bar() as progress:
            task = progress.add_task("producing", total=len(values))
            kafka_io.produce_all(common.kafka_bootstrap_servers, source, values, advance(progress, task))
        del values
        with tempfile.TemporaryDirectory(prefix="bench-scaling-") as folder:
            for kind in args.redis.split(","):
                for n in (int(x) for x in args.workers.split(",")):
                    results += one_config(args, topics, source, kind, n, Path(folder))
    finally:
        topics.delete([source], [])
        topics.close()
    rs = rows(results)
    console.print(report.table("scaling", rs))
    if args.results != "":
        dated = ROOT / "bench" / "results" / f"{time.strftime('%Y-%m-%d', time.gmtime())}.md"
        path = Path(args.results) if args.results else dated
        command = "python -m bench.scaling " + shlex.join(sys.argv[1:] if argv is None else argv)
        report.append(
            path,
            command,
            [
                f"machine: {report.machine()}; code {report.code_version(ROOT)}",
                f"{args.events:,} events, {args.customers:,} customers, {args.partitions} partitions; "
                f"load average before {load_before}, after {report.loadavg()}",
            ],
            rs,
            [],
        )
        console.print(f"appended to {path}")


if __name__ == "__main__":
    main()
