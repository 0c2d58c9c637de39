"""The outbox of the Kafka loop (services/common/kafka_loop.py): the records a handler consumes and produces,
and the producer side that waits for the broker's acknowledgement or dead-letters what it refuses for good."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import cast

import msgspec
from confluent_kafka import KafkaError, KafkaException, Message, Producer

log = logging.getLogger(__name__)


class Record(msgspec.Struct, frozen=True, gc=False):
    """One consumed record (a Struct without GC tracking: a third of a dataclass's cost per record)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    timestamp_ms: int = 0  # Kafka record timestamp (CreateTime); 0 when absent


class OutRecord(msgspec.Struct, frozen=True, gc=False):
    """One record to produce. ``source``: the consumed record it was made from, when there is one; if the
    broker refuses this record for good, that source is what gets dead-lettered (see Outbox.flush)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp_ms: int | None = None
    source: Record | None = None


class DeliveryFailed(KafkaException):
    """The broker did not acknowledge every record of a flush for a reason that may pass (broker down, a
    timeout): the batch is retried, not committed."""


# Errors the broker (or librdkafka, before sending) gives one record and would give it again on every
# retry: the record can never be written as it is. Anything else (timeouts, leadership moves, an unknown or
# unauthorised topic: operators fix those) is treated as passing, and the batch is retried.
PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_TIMESTAMP,
    }
)
ROUNDS = 3  # outputs -> their sources' dead letters -> those letters stripped to headers
ACKED_MAX = 20_000  # dlq_ids of acknowledged dead-letter copies remembered (~100 B each)


class Outbox:
    """Produces records for the handler; ``flush`` waits until the broker acknowledged all of them.

    A record the broker refuses for good (PERMANENT: e.g. MSG_SIZE_TOO_LARGE, a stitched event or an alert
    grown past the topic's max.message.bytes, or a dead-letter copy that does not fit) would fail its batch
    on every retry and stall the pipeline behind it. ``flush`` dead-letters it instead, with reason
    ``undeliverable``: the copy is of its ``source`` record when it has one (else of the refused record
    itself), truncated to fit, with ``dlq_failed_topic`` naming where it was meant to go; a refused
    dead-letter copy is sent again stripped to its headers. Passing failures still raise DeliveryFailed.

    A live process sends a dead-letter copy once: a batch retried after a passing failure does not send
    again a copy the broker already acknowledged (known by its ``dlq_id``; ``resends_skipped`` counts them).
    Only a crash between the flush and the commit re-sends one (docs/operations.md, "Dead letters")."""

    def __init__(
        self,
        producer: Producer,
        flush_timeout_s: float = 30.0,
        dlq_topic: str | None = None,
    ) -> None:
        self._producer, self._timeout, self.dlq_topic = producer, flush_timeout_s, dlq_topic
        self._queued = 0
        self._sent: list[OutRecord] = []  # since the last flush: to find a refused record's OutRecord
        self._failed: list[tuple[KafkaError, OutRecord | Message]] = []
        # Called with (reason, count) for every dead letter the outbox makes itself (a metric).
        self.on_dead_letter: Callable[[str, int], None] | None = None
        self._acked: dict[bytes, None] = {}  # dlq_ids of acknowledged copies, oldest first (bounded)
        self.resends_skipped = 0

    def _dlq_callback(self, r: OutRecord) -> Callable[[KafkaError | None, Message], None] | None:
        """The delivery callback of a dead-letter copy (delivery reports carry no headers, so it holds the
        dlq_id), or None for a copy this process already had acknowledged (a retried batch queued it
        again)."""
        ident = next((v for k, v in r.headers if k == "dlq_id"), None)
        if ident is None:
            return self._delivered
        if ident in self._acked:
            self.resends_skipped += 1
            return None
        return functools.partial(self._dlq_delivered, ident)

    def send(self, records: Iterable[OutRecord]) -> None:
        produce, delivered, sent = self._producer.produce, self._delivered, self._sent.append
        dlq, n = self.dlq_topic, 0
        for r in records:
            callback: Callable[[KafkaError | None, Message], None] | None = delivered
            if r.topic == dlq:  # rare: dead letters only
                callback = self._dlq_callback(r)
                if callback is None:
                    continue
            while True:
                try:
                    produce(
                        r.topic,
                        value=r.value,
                        key=r.key,
                        headers=list(r.headers) or None,
                        timestamp=r.timestamp_ms or 0,
                        on_delivery=callback,
                    )
                    break
                except BufferError:  # librdkafka's local queue is full: serve delivery reports first
                    self._producer.poll(0.05)
                except KafkaException as exc:  # refused before sending (larger than message.max.bytes)
                    if exc.args[0].code() not in PERMANENT:
                        raise
                    self._failed.append((exc.args[0], r))
                    break
            sent(r)
            n += 1
        self._queued += n

    async def flush(self) -> None:
        """Every record sent so far is acknowledged, or dead-lettered when refused for good; raises
        DeliveryFailed (and forgets them) when a refusal may pass."""
        for _ in range(ROUNDS):
            await self._wait()
            failed, self._failed = self._failed, []
            sent, self._sent = self._sent, []
            if not failed:
                return
            if any(err.code() not in PERMANENT for err, _ in failed):
                raise DeliveryFailed(next(err for err, _ in failed if err.code() not in PERMANENT))
            self._dead_letter(await self._alone(failed, sent))
        raise DeliveryFailed(
            KafkaError(
                KafkaError.MSG_SIZE_TOO_LARGE, "even a dead-letter copy stripped to its headers was refused"
            )
        )

    async def _wait(self) -> None:
        if self._queued:
            loop = asyncio.get_running_loop()
            while await loop.run_in_executor(None, self._producer.flush, self._timeout):
                log.warning("records unacknowledged after %.0f s; waiting for the broker", self._timeout)
            self._queued = 0

    async def _alone(
        self, failed: list[tuple[KafkaError, OutRecord | Message]], sent: list[OutRecord]
    ) -> list[tuple[KafkaError, OutRecord]]:
        """The refused records each sent again by itself; those refused again. The broker checks
        max.message.bytes on a whole record batch: on a topic whose limit is below the producer's batch
        size, one big record (or none) gets its batch refused, and only a record refused alone is too big."""
        again: list[tuple[KafkaError, OutRecord]] = []
        for err, what in failed:
            if isinstance(what, OutRecord):  # refused before sending (message.max.bytes): it was alone
                again.append((err, what))
                continue
            r = _find(what, sent)
            self.send([r])
            await self._wait()
            self._sent = []
            refused, self._failed = self._failed, []
            if refused and refused[0][0].code() not in PERMANENT:
                raise DeliveryFailed(refused[0][0])
            if refused:
                again.append((refused[0][0], r))
        return again

    def _dead_letter(self, failed: list[tuple[KafkaError, OutRecord]]) -> None:
        from services.common.dead_letter import dead_letter, stripped  # it builds on this module's types

        if self.dlq_topic is None:
            raise DeliveryFailed(failed[0][0])
        letters: list[OutRecord] = []
        stripped_n, now = 0, time.time_ns() // 1_000_000
        for err, r in failed:
            log.warning(
                "%s refused a record for good (%s); dead-lettering %s",
                r.topic,
                err.name(),
                "its source" if r.source is not None else "it",
            )
            if r.topic == self.dlq_topic:
                letters.append(stripped(r))
                stripped_n += 1
                continue
            source = r.source or Record(r.topic, -1, -1, r.key, r.value, dict(r.headers))
            detail = f"{r.topic}: {err.name()} ({len(r.value or b'')} bytes)"
            letters.append(
                dead_letter(
                    source,
                    self.dlq_topic,
                    "undeliverable",
                    detail,
                    now,
                    extra=[("dlq_failed_topic", r.topic.encode())],
                )
            )
        fresh = len(letters) - stripped_n
        if self.on_dead_letter is not None and fresh:  # a stripped copy was counted under its own reason
            self.on_dead_letter("undeliverable", fresh)
        self.send(letters)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failed.append((err, msg))

    def _dlq_delivered(self, ident: bytes, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failed.append((err, msg))
            return
        self._acked[ident] = None
        if len(self._acked) > ACKED_MAX:
            del self._acked[next(iter(self._acked))]


def _find(msg: Message, sent: list[OutRecord]) -> OutRecord:
    """The OutRecord a delivery report is about (only looked up for refused records: rare)."""
    topic, key, value = msg.topic(), msg.key(), msg.value()
    for r in sent:
        if r.topic == topic and r.value == value and r.key == key:
            return r
    headers = cast(list[tuple[str, bytes]], msg.headers() or [])
    return OutRecord(topic or "", key, value, headers)
