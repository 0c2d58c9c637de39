"""The outbox's delivery rules without a broker: a refusal that may pass fails the flush (the batch is
retried), a refusal for good dead-letters the record's source instead of failing every retry, and a live
process does not send a dead-letter copy twice. (The real broker: tests/integration/stitcher/test_poison.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from confluent_kafka import KafkaError, KafkaException

from services.common.dead_letter import dead_letter
from services.common.kafka_loop import DeliveryFailed, Outbox, OutRecord, Record

pytestmark = pytest.mark.unit

DLQ = "dlq"
SOURCE = Record("channel-events", 2, 41, b"k", b'{"event_id": "e1"}', {"trace": b"t"})


@dataclass
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None


class Message:
    """What a delivery report carries (no headers, as librdkafka's)."""

    def __init__(self, sent: Sent) -> None:
        self._sent = sent

    def topic(self) -> str:
        return self._sent.topic

    def key(self) -> bytes | None:
        return self._sent.key

    def value(self) -> bytes | None:
        return self._sent.value

    def headers(self) -> None:
        return None


@dataclass
class Broker:
    """A stand-in producer: ``verdict(record, alone)`` is the error the broker gives a record (None: ok)."""

    verdict: Callable[[Sent, bool], int | None]
    written: list[Sent] = field(default_factory=list)
    pending: list[tuple[Sent, Callable[..., None]]] = field(default_factory=list)
    too_big_to_send: int = 10**9

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp: int = 0,
        on_delivery: Callable[..., None] | None = None,
    ) -> None:
        if len(value or b"") > self.too_big_to_send:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        assert on_delivery is not None
        self.pending.append((Sent(topic, key, value, headers), on_delivery))

    def flush(self, _timeout: float) -> int:
        pending, self.pending = self.pending, []
        for sent, report in pending:
            code = self.verdict(sent, len(pending) == 1)
            if code is None:
                self.written.append(sent)
            report(None if code is None else KafkaError(code), Message(sent))
        return 0

    def poll(self, _timeout: float) -> int:
        return 0


def outbox(broker: Broker) -> tuple[Outbox, list[tuple[str, int]]]:
    box = Outbox(broker, dlq_topic=DLQ)  # type: ignore[arg-type]
    counted: list[tuple[str, int]] = []
    box.on_dead_letter = lambda reason, n: counted.append((reason, n))
    return box, counted


def flush(box: Outbox) -> None:
    asyncio.run(box.flush())


def out(value: bytes, topic: str = "stitched-events", source: Record | None = SOURCE) -> OutRecord:
    return OutRecord(topic, b"c_1", value, [("ce_id", b"e1")], None, source)


def headers(sent: Sent) -> dict[str, bytes]:
    return dict(sent.headers or [])


def test_a_refusal_that_may_pass_fails_the_flush() -> None:
    box, counted = outbox(Broker(lambda s, _: KafkaError._MSG_TIMED_OUT if s.value == b"slow" else None))
    box.send([out(b"ok"), out(b"slow")])
    with pytest.raises(DeliveryFailed):
        flush(box)
    assert counted == []


def test_a_record_refused_for_good_dead_letters_its_source_and_the_flush_succeeds() -> None:
    broker = Broker(lambda s, _: KafkaError.MSG_SIZE_TOO_LARGE if s.value == b"huge" else None)
    box, counted = outbox(broker)
    box.send([out(b"ok"), out(b"huge"), out(b"fine")])
    flush(box)
    [letter] = [s for s in broker.written if s.topic == DLQ]
    h = headers(letter)
    assert letter.value == SOURCE.value and letter.key == SOURCE.key and h["trace"] == b"t"
    assert h["dlq_reason"] == b"undeliverable" and h["dlq_failed_topic"] == b"stitched-events"
    assert h["dlq_id"] == b"channel-events/2/41" and b"MSG_SIZE_TOO_LARGE" in h["dlq_detail"]
    assert [s.value for s in broker.written if s.topic != DLQ] == [b"ok", b"fine"]
    assert counted == [("undeliverable", 1)]


def test_records_refused_only_with_their_batch_are_sent_again_alone() -> None:
    # A topic limit below the batch size: the broker refuses whole batches, any record alone goes in.
    broker = Broker(lambda _, alone: None if alone else KafkaError.MSG_SIZE_TOO_LARGE)
    box, counted = outbox(broker)
    box.send([out(b"a"), out(b"b")])
    flush(box)
    assert [s.value for s in broker.written] == [b"a", b"b"] and counted == []


def test_a_record_without_a_source_is_dead_lettered_itself() -> None:
    broker = Broker(lambda s, _: KafkaError.MSG_SIZE_TOO_LARGE if s.topic == "gap-alerts" else None)
    box, _ = outbox(broker)
    box.send([out(b"alert", topic="gap-alerts", source=None)])
    flush(box)
    [letter] = broker.written
    assert letter.value == b"alert" and headers(letter)["dlq_source_topic"] == b"gap-alerts"
    assert headers(letter)["dlq_source_offset"] == b"-1" and headers(letter)["ce_id"] == b"e1"


def test_a_refused_dead_letter_copy_goes_again_with_its_headers_only() -> None:
    broker = Broker(lambda s, _: KafkaError.MSG_SIZE_TOO_LARGE if s.topic == DLQ and s.value else None)
    box, counted = outbox(broker)
    box.send([dead_letter(SOURCE, DLQ, "malformed_json", "d", 1)])
    flush(box)
    [letter] = broker.written
    assert letter.value is None and headers(letter)["dlq_reason"] == b"malformed_json"
    assert headers(letter)["dlq_truncated"] == b"value,headers" and counted == []  # counted as it was


def test_a_record_librdkafka_refuses_to_send_is_dead_lettered() -> None:
    broker = Broker(lambda _, __: None, too_big_to_send=100)
    box, counted = outbox(broker)
    box.send([out(b"x" * 101), out(b"ok")])
    flush(box)
    assert [s.topic for s in broker.written] == ["stitched-events", DLQ] and counted == [("undeliverable", 1)]


def test_a_live_process_sends_an_acknowledged_copy_once() -> None:
    broker = Broker(lambda _, __: None)
    box, _ = outbox(broker)
    letter = dead_letter(SOURCE, DLQ, "malformed_json", "d", 1)
    box.send([letter])
    flush(box)
    box.send([dead_letter(SOURCE, DLQ, "malformed_json", "d", 2)])  # the batch, retried
    flush(box)
    assert len(broker.written) == 1 and box.resends_skipped == 1


def test_a_copy_that_was_not_acknowledged_is_sent_again() -> None:
    failing = [True]
    broker = Broker(lambda _, __: KafkaError._TRANSPORT if failing[0] else None)
    box, _ = outbox(broker)
    box.send([dead_letter(SOURCE, DLQ, "malformed_json", "d", 1)])
    with pytest.raises(DeliveryFailed):
        flush(box)
    failing[0] = False
    box.send([dead_letter(SOURCE, DLQ, "malformed_json", "d", 2)])
    flush(box)
    assert len(broker.written) == 1 and box.resends_skipped == 0
