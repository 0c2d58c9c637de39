"""The latency phase: channel events at a steady rate with live event times, and the alerts they cause.

Every event's send moment is recorded (perf_counter, when it is handed to the producer); a reader thread
consumes gap-alerts from their current end and notes when each channel_switch alert arrives. The
trigger event of a channel_switch is the last id of its evidence, so produce -> alert is measured for
exactly the events that made one, through the stitcher, Kafka twice and the detector.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import orjson
from confluent_kafka import Consumer, TopicPartition

from bench.kafka_io import producer, send
from bench.stitcher.events import events
from services.common.timeutil import now_ms

SLICE_S = 0.005  # pacing granularity: 25 events per slice at 5k/s


class AlertReader(threading.Thread):
    """Reads gap-alerts from the given offsets; first arrival per trigger event id of each alert type."""

    def __init__(self, bootstrap: str, topic: str, start: dict[int, int]) -> None:
        super().__init__(daemon=True, name="alert-reader")
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{topic}-bench-reader",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
            }
        )
        self.consumer.assign([TopicPartition(topic, p, off) for p, off in start.items()])
        self.position = dict(start)
        self.arrived: dict[tuple[str, str], float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                for msg in self.consumer.consume(num_messages=1000, timeout=0.05):
                    if msg.error() is not None:
                        continue
                    now = time.perf_counter()
                    alert = orjson.loads(msg.value())  # type: ignore[arg-type]
                    ids = alert.get("evidence", {}).get("event_ids") or []
                    if ids:
                        self.arrived.setdefault((alert["type"], ids[-1]), now)
                    self.position[msg.partition()] = msg.offset() + 1  # type: ignore[index,operator]
        finally:
            self.consumer.close()

    def reached(self, ends: dict[int, int]) -> bool:
        return all(self.position.get(p, 0) >= end for p, end in ends.items())

    def latencies_ms(self, kind: str, sent: dict[str, float]) -> list[float]:
        return [(t - sent[eid]) * 1000 for (k, eid), t in self.arrived.items() if k == kind and eid in sent]


def compact(values: Iterable[bytes]) -> list[bytes]:
    """The values as exact-size copies: orjson's output keeps a larger allocation under each small bytes
    object (~4 KB resident per event, 4 GB at 1M events); a copy of under 512 bytes lives in pymalloc."""
    return [bytes(memoryview(v)) for v in values]


def steady(
    bootstrap: str,
    topic: str,
    rate: int,
    seconds: int,
    customers: int,
    sent: dict[str, float],
    progress: Callable[[int], None],
) -> float:
    """Send rate * seconds events, each with occurred_at = its planned send time; achieved events/s."""
    n = rate * seconds
    lead_s = 1.0  # encoding everything up front, so the paced loop only hands bytes over
    start_ms = now_ms() + int(lead_s * 1000)
    values = compact(events(n, customers, start_ms, seed=99, span_ms=seconds * 1000))
    ids = [orjson.loads(v)["event_id"] for v in values]
    p = producer(bootstrap, linger_ms=1)
    t0 = time.perf_counter() + max(0.0, start_ms / 1000 - time.time())
    per_slice = max(1, int(rate * SLICE_S))
    for i in range(0, n, per_slice):
        wait = t0 + i / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)  # pacing the producer, not synchronising anything
        for value, eid in zip(values[i : i + per_slice], ids[i : i + per_slice], strict=True):
            send(p, topic, value)
            sent[eid] = time.perf_counter()
        p.poll(0)
        if i % (per_slice * 40) == 0:
            progress(i)
    took = time.perf_counter() - t0
    p.flush(60)
    return n / took


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
