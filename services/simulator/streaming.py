"""Sending records to Kafka at a controlled pace, and reading JSONL files of records back.

The pacing arithmetic (``Pacer``) is pure; the producer is a thin kafka-python adapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from services.common.errors import UserError


@dataclass
class Pacer:
    """When the n-th record may go: at most ``rate`` records/s (0 = no limit) and, when ``compression``
    is set, not before its simulated arrival time divided by the compression (1440 = a day a minute)."""

    rate: float = 0.0
    compression: float = 0.0
    _t0: float | None = None
    _sim0: int | None = None
    _sent: int = 0

    def due(self, now: float, sim_ms: int | None = None) -> float:
        """Seconds to wait before sending the next record (0 when it may go now)."""
        if self._t0 is None:
            self._t0, self._sim0 = now, sim_ms
        wait = 0.0
        if self.rate > 0:
            wait = self._t0 + self._sent / self.rate - now
        if self.compression > 0 and sim_ms is not None and self._sim0 is not None:
            wait = max(wait, self._t0 + (sim_ms - self._sim0) / 1000 / self.compression - now)
        return max(0.0, wait)

    def sent(self) -> None:
        self._sent += 1


@dataclass(frozen=True)
class Line:
    number: int
    key: bytes | None
    payload: bytes


@dataclass
class ReadReport:
    good: int = 0
    bad_lines: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)


def parse_line(number: int, text: bytes) -> Line | str:
    """A JSONL record (``{"key", "value"}`` or ``{"key", "raw"}``, or a bare channel event), or the
    reason the line is unusable."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return f"not JSON ({exc.msg})"
    if not isinstance(doc, dict):
        return "not a JSON object"
    key = doc.get("key")
    if key is not None and not isinstance(key, str):
        return "key is not a string"
    kb = key.encode() if key is not None else None
    if "raw" in doc and isinstance(doc["raw"], str):
        return Line(number, kb, doc["raw"].encode())
    if "value" in doc:
        return Line(number, kb, orjson.dumps(doc["value"]))
    if "event_id" in doc:  # a bare channel event: keyed by its event id
        return Line(number, str(doc["event_id"]).encode(), text.strip())
    return "neither {key, value}, {key, raw} nor a channel event"


def parse_lines(lines: Iterable[bytes], report: ReadReport) -> Iterator[Line]:
    """Records from JSONL lines (1-based numbers); unusable lines are counted in ``report`` and skipped."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        parsed = parse_line(number, text)
        if isinstance(parsed, str):
            report.bad_lines.append(number)
            report.reasons[number] = parsed
            continue
        report.good += 1
        yield parsed


def read_lines(path: str | Path, report: ReadReport) -> Iterator[Line]:
    try:
        handle = Path(path).open("rb")  # noqa: SIM115 - closed by the with below; opening errors become UserError
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        yield from parse_lines(handle, report)


def make_producer(bootstrap: str, security: dict[str, Any] | None = None) -> Any:
    """``security``: TLS/SASL keyword arguments (services.common.kafka_config.kafka_python_config)."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        return KafkaProducer(
            bootstrap_servers=bootstrap.split(","),
            acks="all",
            linger_ms=20,
            batch_size=256 * 1024,
            retries=10,
            request_timeout_ms=30_000,
            max_in_flight_requests_per_connection=1,
            bootstrap_timeout_ms=10_000,
            **(security or {}),
        )
    except KafkaError as exc:
        raise UserError(f"no Kafka broker answers at {bootstrap} (`journeys up` starts one): {exc}") from None


def send_all(
    producer: Any,
    topic: str,
    items: Iterable[tuple[bytes | None, bytes, int | None]],
    pacer: Pacer,
    on_sent: Callable[[], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> int:
    """Send (key, value, simulated ms) triples in order, paced; flush at the end. Returns the count sent.
    One in-flight request per connection keeps the file's order within a partition."""
    sent = 0
    failures: list[BaseException] = []
    for key, value, sim_ms in items:
        if stop is not None and stop():
            break
        wait = pacer.due(time.monotonic(), sim_ms)
        if wait > 0:
            time.sleep(wait)  # pacing the stream, not synchronising
        producer.send(topic, key=key, value=value).add_errback(failures.append)
        pacer.sent()
        sent += 1
        if on_sent is not None:
            on_sent()
        if failures:
            break
    producer.flush()
    if failures:
        raise UserError(f"Kafka refused a record on {topic}: {failures[0]}")
    return sent
