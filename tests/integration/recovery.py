"""Shared by the recovery tests (issue 10, "Fast recovery"): a live input on every partition, the heads of a
topic, whether a group has committed through given offsets, a SIGKILL with its time."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from confluent_kafka import Consumer, TopicPartition
from kafka import KafkaProducer

PARTITIONS = 4


@contextmanager
def live_input(
    bootstrap: str, topic: str, record: Callable[[int], tuple[bytes | None, bytes]]
) -> Iterator[None]:
    """Records ``record(n)`` (key, value) on every partition, a few every 20 ms, until the block ends."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    done = threading.Event()

    def run() -> None:
        n = 0
        while not done.wait(0.02):  # the input's pace, not a synchronisation
            for p in range(PARTITIONS):
                key, value = record(n)
                producer.send(topic, value, key=key, partition=p)
                n += 1
            producer.flush()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(10)
        producer.close()


def heads(bootstrap: str, topic: str) -> dict[int, int]:
    """Every partition's high watermark now."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "heads"})
    try:
        return {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS)
        }
    finally:
        c.close()


def committed_through(bootstrap: str, group: str, topic: str, marks: dict[int, int]) -> bool:
    """The group has committed at least up to ``marks`` on every partition."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        done = {
            tp.partition: tp.offset
            for tp in c.committed([TopicPartition(topic, p) for p in marks], timeout=10)
        }
    finally:
        c.close()
    return all(done.get(p, -1) >= mark for p, mark in marks.items())


def kill(proc: subprocess.Popen[bytes]) -> float:
    """SIGKILL a worker (no goodbye to the group, nothing flushed); the monotonic time it died."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    return time.monotonic()
