"""Event -> alert latency of the gap detector at a steady rate (run by hand, not a test).

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 REDIS_URL=redis://127.0.0.1:16379/0 \\
        .venv/bin/python -m bench.detector.latency --rate 5000 --seconds 30

One `journeys detector` worker (event clock) consumes a fresh stitched-events topic. A producer thread
sends stitched events at --rate per second, paced in 5 ms slices; each event's occurred_at is its send
time. 10 % of the customers switch from web to phone on the same intent 2 s apart (channel_switch), 10 %
call three times 1 s apart (repeat_contact), the rest browse (no alert). Latency = the moment the alert
is read from gap-alerts minus the moment its trigger event was handed to the producer (so it includes
the producer's linger, Kafka twice, the detector's batch window and Redis). Topics/keys are deleted.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import orjson
from kafka import KafkaProducer
from rich.console import Console
from rich.table import Table

from bench.detector.common import Run, detector, percentile, read_alerts, stitched

console = Console()
SLICE_S = 0.005


def script(n: int, seed: int) -> list[tuple[float, str, dict[str, object]]]:
    """(offset seconds, kind, partial event) for one customer's scenario."""
    rnd = random.Random(seed)
    kind = rnd.random()
    if kind < 0.1:
        return [
            (0.0, "", {"channel": "web", "intent": "billing"}),
            (2.0, "channel_switch", {"channel": "phone", "intent": "billing"}),
        ]
    if kind < 0.2:
        return [
            (float(i), "repeat_contact" if i == 2 else "", {"channel": "phone", "intent": "outage"})
            for i in range(3)
        ]
    return [(float(i), "", {"channel": "web"}) for i in range(rnd.randint(1, 4))]


def plan(rate: int, seconds: float) -> list[tuple[float, str, str, dict[str, object]]]:
    """Every send of the run, ordered by send offset: (offset, kind, customer id, fields)."""
    out = []
    starts = rate * seconds / 2.2  # ~2.2 events per scenario on average
    for n in range(int(starts)):
        start = n / starts * seconds
        cid = f"c_{n:016x}"
        out += [(start + off, kind, cid, fields) for off, kind, fields in script(n, n)]
    out.sort(key=lambda x: x[0])
    return [x for x in out if x[0] < seconds]


def produce(
    run: Run,
    sends: list[tuple[float, str, str, dict[str, object]]],
    sent: dict[str, float],
    kinds: dict[str, str],
) -> float:
    """Send on schedule; payloads are built up front (occurred_at = planned send time) so the producer
    loop only hands bytes to kafka-python."""
    producer = KafkaProducer(bootstrap_servers=run.common.kafka_bootstrap_servers, linger_ms=1, acks=1)
    wall0 = time.time() + 1.0
    payloads = [
        (
            off,
            kind,
            f"e{i}",
            cid.encode(),
            orjson.dumps(stitched(f"e{i}", cid, int((wall0 + off) * 1000), **fields)),
        )  # type: ignore[arg-type]
        for i, (off, kind, cid, fields) in enumerate(sends)
    ]
    t0 = time.perf_counter() + (wall0 - time.time())
    for off, kind, eid, key, value in payloads:
        wait = t0 + off - time.perf_counter()
        if wait > SLICE_S:
            time.sleep(wait)  # pacing the producer, not synchronising anything
        producer.send(run.stitched, key=key, value=value)
        if kind:
            sent[eid], kinds[eid] = time.perf_counter(), kind
    producer.flush()
    producer.close()
    return time.perf_counter() - t0


def worker_summary(port: int) -> str:
    """The worker's own view: mean Kafka-timestamp -> alert-step latency and mean batch size."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    val = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    e2e_n = val.get('journeys_end_to_end_latency_seconds_count{step="alert"}', 0) or 1
    e2e = val.get('journeys_end_to_end_latency_seconds_sum{step="alert"}', 0) / e2e_n
    n = val.get('journeys_batch_size_count{stage="rules"}', 0) or 1
    size = val.get('journeys_batch_size_sum{stage="rules"}', 0) / n
    return (
        f"worker :{port}: {e2e_n:.0f} events, mean record->processed {e2e * 1000:.1f} ms, "
        f"mean batch {size:.0f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of the run not measured")
    ap.add_argument("--workers", type=int, default=1, help="detector worker processes (4 partitions)")
    args = ap.parse_args()
    run = Run()
    run.create_topics()
    log = Path(mkdtemp()) / "detector.log"
    sends = plan(args.rate, args.seconds)
    sent: dict[str, float] = {}
    kinds: dict[str, str] = {}
    got: dict[str, float] = {}
    try:
        with ExitStack() as stack:
            envs = [run.env(JOURNEYS_TIMER_CLOCK="event") for _ in range(args.workers)]
            for w, env in enumerate(envs):
                stack.enter_context(detector(env, log.with_suffix(f".{w}")))
            time.sleep(8)  # let the consumer group settle before the clock starts (pacing, not a test)
            stop = threading.Event()

            def arrived(alert: dict[str, Any], at: float) -> None:
                got.setdefault(alert["evidence"]["event_ids"][-1], at)

            reader = threading.Thread(target=read_alerts, args=(run, stop, arrived), daemon=True)
            reader.start()
            console.print(f"producing {len(sends)} events at {args.rate}/s for {args.seconds:.0f}s ...")
            took = produce(run, sends, sent, kinds)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(set(sent) & set(got)) < len(sent):
                time.sleep(0.2)
            stop.set()
            reader.join(timeout=5)
            for env in envs:
                console.print(worker_summary(int(env["JOURNEYS_DETECTOR_METRICS_PORT"])))
    finally:
        run.cleanup()
    t_start = min(sent.values(), default=0.0) + args.warmup
    table = Table(title=f"event -> alert latency, {len(sends) / took:.0f} events/s achieved")
    for col in ("type", "alerts", "missing", "p50 ms", "p99 ms", "max ms"):
        table.add_column(col)
    for kind in ("channel_switch", "repeat_contact"):
        ids = [e for e, k in kinds.items() if k == kind and sent[e] >= t_start]
        lat = [(got[e] - sent[e]) * 1000 for e in ids if e in got]
        table.add_row(
            kind,
            str(len(lat)),
            str(len(ids) - len(lat)),
            f"{percentile(lat, 0.5):.1f}",
            f"{percentile(lat, 0.99):.1f}",
            f"{max(lat, default=float('nan')):.1f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
