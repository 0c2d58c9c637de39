"""End-to-end stitcher benchmark (run by hand, not a test).

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 REDIS_URL=redis://127.0.0.1:16379/0 \\
        .venv/bin/python -m bench.stitcher.run --events 1000000 --customers 100000

1. produces the events (~400 bytes, 2-3 identifiers each, merges among them) to a fresh topic;
2. bare ceiling: an aiokafka consume + orjson decode loop over that topic;
3. one stitcher worker process (both agents) from its first batch until every event is visible in the
   journey store (journeys_touchpoints_written_total on its /metrics);
4. latency: with the worker caught up, a steady --rate events/s for --seconds; p50/p99 of produce ->
   visible in the journey store (the worker's journeys_end_to_end_latency_seconds{step="journey"},
   Kafka CreateTime to the journey script's return, from the histogram's buckets).
Topics and Redis keys of the run are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.stitcher.events import events
from bench.stitcher.promtext import histogram_quantiles, read_metrics
from services.common.settings import CommonSettings
from services.common.timeutil import now_ms

console = Console()


def produce(bootstrap: str, topic: str, values: list[bytes], label: str) -> float:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024,
                             max_request_size=4 * 1024 * 1024)
    t0 = time.perf_counter()
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(label, total=len(values))
        for i, value in enumerate(values):
            producer.send(topic, value)
            if i % 10_000 == 0:
                bar.update(task, completed=i)
        producer.flush()
    producer.close()
    return time.perf_counter() - t0


async def bare_loop(bootstrap: str, topic: str, partitions: int, n: int) -> tuple[float, float]:
    """The ceiling: consume every record and orjson-decode it, nothing else. (wall s, CPU s)"""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    seen, t0, cpu0 = 0, None, 0.0
    try:
        while seen < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if t0 is None and batches:
                t0, cpu0 = time.perf_counter(), time.process_time()
            for records in batches.values():
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
    finally:
        await consumer.stop()
    return time.perf_counter() - (t0 or time.perf_counter()), time.process_time() - cpu0


def counter(port: int, name: str) -> float:
    return sum(v for (n, _), v in read_metrics(port).items() if n == name)


def wait_for(fn: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not fn():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--rate", type=int, default=5000, help="events/s of the latency phase")
    ap.add_argument("--seconds", type=int, default=20, help="length of the latency phase")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--runner", choices=("faust", "batch"), default="faust", help="JOURNEYS_STITCHER_RUNNER")
    ap.add_argument("--keep", action="store_true", help="keep topics and Redis keys")
    args = ap.parse_args()
    common = CommonSettings()
    bootstrap, run = common.kafka_bootstrap_servers, f"bench{uuid.uuid4().hex[:8]}"
    names = {k: f"{run}-{k}" for k in ("channel-events", "dlq", "stitched-events", "identity-merges")}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(t, args.partitions, 1) for t in names.values()])

    start = now_ms() - 3 * 3_600_000
    with console.status(f"generating {args.events:,} events"):
        values = list(events(args.events, args.customers, start, span_ms=3_600_000))
    size = sum(map(len, values)) / len(values)
    produce_s = produce(bootstrap, names["channel-events"], values, "producing")
    console.print(f"produced {len(values):,} events of {size:.0f} bytes avg in {produce_s:.1f}s")

    topic = names["channel-events"]
    bare_s, bare_cpu = asyncio.run(bare_loop(bootstrap, topic, args.partitions, len(values)))
    bare_rate, bare_cpu_rate = len(values) / bare_s, len(values) / bare_cpu
    console.print(f"bare aiokafka+orjson loop: {bare_rate:,.0f} events/s "
                  f"({bare_cpu_rate:,.0f} per CPU-second)")

    port = _free_port()
    env = dict(os.environ, JOURNEYS_KEY_PREFIX=run, JOURNEYS_STITCHER_GROUP=run,
               JOURNEYS_TOPIC_CHANNEL_EVENTS=names["channel-events"], JOURNEYS_TOPIC_DLQ=names["dlq"],
               JOURNEYS_TOPIC_STITCHED_EVENTS=names["stitched-events"],
               JOURNEYS_TOPIC_IDENTITY_MERGES=names["identity-merges"],
               JOURNEYS_STITCHER_METRICS_PORT=str(port),
               JOURNEYS_STITCHER_BATCH_SIZE=str(args.batch_size), JOURNEYS_LOG_LEVEL="WARNING",
               JOURNEYS_TOPIC_PARTITIONS=str(args.partitions), JOURNEYS_STITCHER_RUNNER=args.runner)
    log = Path(f"/tmp/{run}-stitcher.log")
    with log.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "services.cli.main", "stitcher"], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _up(port) and counter(port, "journeys_touchpoints_written_total") > 0,
                 "the first stitched batch", 120)
        t0, first = time.perf_counter(), counter(port, "journeys_touchpoints_written_total")
        cpu0 = _cpu_seconds(worker.pid)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("stitching", total=len(values))
            while (done := counter(port, "journeys_touchpoints_written_total")) < len(values):
                bar.update(task, completed=done)
                if worker.poll() is not None:
                    raise SystemExit(f"worker died, see {log}")
                time.sleep(0.2)
        stitched_rate = (len(values) - first) / (time.perf_counter() - t0)
        stitched_cpu_rate = (len(values) - first) / max(_cpu_seconds(worker.pid) - cpu0, 1e-9)
        merges = counter(port, "journeys_merges_total")
        console.print(f"stitched: {stitched_rate:,.0f} events/s "
                      f"({stitched_cpu_rate:,.0f} per worker CPU-second, {merges:,.0f} merges)")

        before = read_metrics(port)
        _steady(bootstrap, names["channel-events"], args.rate, args.seconds, args.customers)
        target = len(values) + args.rate * args.seconds
        wait_for(lambda: counter(port, "journeys_touchpoints_written_total") >= target, "the latency phase",
                 120)
        p50, p99 = histogram_quantiles(before, read_metrics(port), "journeys_end_to_end_latency_seconds",
                                       {"step": "journey"}, (0.5, 0.99))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        if not args.keep:
            admin.delete_topics(list(names.values()))
            _drop_keys(common.redis_url, run)
        admin.close()

    table = Table(title=f"stitcher benchmark: {len(values):,} events, {args.customers:,} customers, "
                        f"{args.partitions} partitions, 1 worker ({args.runner} runner)")
    for col in ("measure", "value", "target"):
        table.add_column(col)
    table.add_row("stitched throughput", f"{stitched_rate:,.0f} events/s", ">= 50,000/s")
    table.add_row("bare consume+decode", f"{bare_rate:,.0f} events/s", "")
    table.add_row("ratio", f"{stitched_rate / bare_rate:.1%}", ">= 50%")
    table.add_row("stitched per worker CPU-second", f"{stitched_cpu_rate:,.0f} events", "")
    table.add_row("bare per CPU-second", f"{bare_cpu_rate:,.0f} events", "")
    table.add_row("ratio per CPU-second", f"{stitched_cpu_rate / bare_cpu_rate:.1%}", "")
    table.add_row("load average (1 min) at the end", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", "")
    table.add_row(f"latency p50 @ {args.rate}/s", f"{p50 * 1000:.1f} ms", "")
    table.add_row(f"latency p99 @ {args.rate}/s", f"{p99 * 1000:.1f} ms", "< 50 ms")
    console.print(table)


def _steady(bootstrap: str, topic: str, rate: int, seconds: int, customers: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    values = list(events(rate * seconds, customers, now_ms() - 60_000, seed=99, span_ms=50_000))
    tick, per_tick = 0.01, max(1, rate // 100)
    t0 = time.perf_counter()
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"steady {rate}/s", total=len(values))
        for i in range(0, len(values), per_tick):
            for value in values[i:i + per_tick]:
                producer.send(topic, value)
            bar.update(task, completed=i)
            delay = t0 + (i // per_tick + 1) * tick - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # pacing the producer, not synchronisation
    producer.flush()
    producer.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), so a busy shared box can be accounted for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _up(port: int) -> bool:
    try:
        read_metrics(port)
    except OSError:
        return False
    return True


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _drop_keys(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    batch = []
    for key in client.scan_iter(match=f"{prefix}:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


if __name__ == "__main__":
    main()
