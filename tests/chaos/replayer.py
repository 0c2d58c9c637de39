"""Replays the population into the private stack's channel-events, paced by simulated arrival time as
`journeys simulate --kafka --compression` paces it (the simulator's Pacer), in a thread. The producer is
idempotent with a long delivery timeout, so a broker bounce delays records but never drops or doubles one;
delivery reports tell where every malformed record landed (partition, offset), which the DLQ check uses."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from services.simulator.generator import Record
from services.simulator.streaming import Pacer


@dataclass
class ReplayResult:
    sent: int = 0
    delivered: int = 0
    failed: list[str] = field(default_factory=list)
    bad_offsets: set[tuple[int, int]] = field(default_factory=set)  # (partition, offset) of malformed inputs
    seconds: float = 0.0


class Replayer(threading.Thread):
    def __init__(self, bootstrap: str, topic: str, records: list[Record], compression: float) -> None:
        super().__init__(name="chaos-replay", daemon=True)
        self.topic, self.records = topic, records
        self.pacer = Pacer(compression=compression)
        self.result = ReplayResult()
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "message.timeout.ms": 600_000,
                "reconnect.backoff.max.ms": 1000,
                "log_level": 2,  # broker bounces are expected: no noise
            }
        )

    def _report(self, bad: bool) -> Any:
        def done(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                self.result.failed.append(str(err))
                return
            self.result.delivered += 1
            if bad:
                self.result.bad_offsets.add((msg.partition() or 0, msg.offset() or 0))

        return done

    def run(self) -> None:
        t0 = time.monotonic()
        for rec in self.records:
            wait = self.pacer.due(time.monotonic(), rec.arrival_ms)
            if wait > 0:
                time.sleep(wait)  # pacing the stream, not synchronising
            while True:
                try:
                    self.producer.produce(
                        self.topic,
                        rec.payload(),
                        rec.key.encode(),
                        on_delivery=self._report(rec.raw is not None),
                    )
                    break
                except BufferError:  # the local queue is full (the broker is down): let it drain
                    self.producer.poll(0.5)
            self.pacer.sent()
            self.result.sent += 1
            self.producer.poll(0)
        left = self.producer.flush(660)
        if left:
            self.result.failed.append(f"{left} record(s) still undelivered after 660 s")
        self.result.seconds = time.monotonic() - t0
