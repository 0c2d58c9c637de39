"""Stall firing delay after the deadline (run by hand, not a test).

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 REDIS_URL=redis://127.0.0.1:16379/0 \\
        .venv/bin/python -m bench.detector.stall_delay --stalls 5000 --sla 10s

One `journeys detector` worker in live clock mode with zero lateness and a definitions file whose one
stage has --sla. --stalls customers each send one event (occurred_at = now, spread over 2 s), so each
arms a timer due at occurred_at + sla on the wall clock. Delay = the moment the stall alert is read from
gap-alerts minus its deadline (the timer tick, the claim script, the state load, Kafka both ways).
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import orjson
from kafka import KafkaProducer
from rich.console import Console
from rich.table import Table

from bench.detector.common import Run, detector, percentile, read_alerts, stitched
from services.common.timeutil import parse_duration_ms, parse_rfc3339_ms

console = Console()
DEFS = """schema_version: "1.0"
channels: {{assisted: [phone], self_service: [web]}}
journeys:
  bench:
    stages: [{{name: wait, sla: {sla}}}]
    terminal: [done]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stalls", type=int, default=5000)
    ap.add_argument("--sla", default="10s")
    args = ap.parse_args()
    tmp = Path(mkdtemp())
    (tmp / "defs.yaml").write_text(DEFS.format(sla=args.sla))
    run = Run()
    run.create_topics()
    got: dict[str, float] = {}
    stop = threading.Event()

    def arrived(alert: dict[str, Any], _at: float) -> None:
        deadline_s = parse_rfc3339_ms(alert["evidence"]["deadline"]) / 1000
        got.setdefault(alert["alert_id"], time.time() - deadline_s)

    env = run.env(
        JOURNEYS_TIMER_CLOCK="live",
        JOURNEYS_WATERMARK_LATENESS="0s",
        JOURNEYS_DEFINITIONS=str(tmp / "defs.yaml"),
    )
    try:
        with detector(env, tmp / "detector.log"):
            reader = threading.Thread(target=read_alerts, args=(run, stop, arrived), daemon=True)
            reader.start()
            producer = KafkaProducer(bootstrap_servers=run.common.kafka_bootstrap_servers, linger_ms=5)
            t0 = time.time()
            for i in range(args.stalls):
                cid = f"c_{i:016x}"
                t = int((t0 + 2.0 * i / args.stalls) * 1000)
                wait = t / 1000 - time.time()
                if wait > 0.005:
                    time.sleep(wait)  # pacing the producer
                event = stitched(f"s{i}", cid, t, "web", journey={"type": "bench", "stage": "wait"})
                producer.send(run.stitched, key=cid.encode(), value=orjson.dumps(event))
            producer.flush()
            producer.close()
            deadline = time.monotonic() + parse_duration_ms(args.sla) / 1000 + 60
            while len(got) < args.stalls and time.monotonic() < deadline:
                time.sleep(0.2)
            stop.set()
            reader.join(timeout=5)
    finally:
        run.cleanup()
    delays = [d * 1000 for d in got.values()]
    table = Table(title=f"stall firing delay after the deadline ({args.stalls} timers, sla {args.sla})")
    for col in ("fired", "p50 ms", "p99 ms", "max ms"):
        table.add_column(col)
    table.add_row(
        str(len(delays)),
        f"{percentile(delays, 0.5):.0f}",
        f"{percentile(delays, 0.99):.0f}",
        f"{max(delays, default=float('nan')):.0f}",
    )
    console.print(table)


if __name__ == "__main__":
    main()
