"""No valid event is lost to a bad one, on a real broker and Redis: for every poison kind, a burst of valid
events on ONE key with the poison record in the middle goes through the stitcher's loop; every valid event
is in its customer's journey and on stitched-events, the poison record is in the DLQ with its reason, the
offsets are committed to the end, and nothing was retried (no crash loop). Records the broker refuses for
good (an output too large for its topic, a dead-letter copy too large for the DLQ) are dead-lettered as
'undeliverable' instead of stalling the loop."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis
import redis.asyncio as aioredis
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry

from services.common.dead_letter import MAX_COPY_BYTES
from services.common.kafka_loop import DeliveryFailed, Outbox, Record
from services.common.keys import Keys
from services.common.timeutil import now_ms
from services.stitcher.metrics import StitcherMetrics
from services.stitcher.settings import StitcherSettings
from tests.conftest import Infra, Topics
from tests.helpers import poll
from tests.integration.loop.support import Recording, run_until
from tests.integration.stitcher.support import committed, consume_all, create_topics, event, worker_env
from tests.integration.stitcher.test_commits import worker
from tests.integration.stitcher.test_worker import customer_of, journey_ids, lookup
from tests.poison import FITS_BUT_ITS_COPY_DOES_NOT, channel_poison, odd_but_valid

pytestmark = pytest.mark.integration

BURST = 12  # valid events before and after the poison record
Records = list[tuple[bytes, bytes | None]]


def produce_raw(bootstrap: str, topic: str, items: Records) -> None:
    """(key, value) records in order (confluent-kafka: a 1 MB record needs a larger message.max.bytes)."""
    p = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 4 * 1024 * 1024, "linger.ms": 5})
    for key, value in items:
        p.produce(topic, value=value, key=key)
    assert p.flush(30) == 0


def retries(registry: CollectorRegistry) -> float:
    """Every batch retried, whatever the target (a crash loop would show here)."""
    return sum(
        s.value
        for m in registry.collect()
        if m.name == "journeys_retries"
        for s in m.samples
        if s.name == "journeys_retries_total"
    )


def end_offsets(bootstrap: str, topic: str, partitions: int = 4) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "end-offsets"})

    def read() -> list[int] | None:
        try:  # a topic created a moment ago may not have a leader everywhere yet
            return [c.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in range(partitions)]
        except KafkaException:
            return None

    try:
        ends: list[int] = poll(read, timeout=30, what=f"the end offsets of {topic}")
        return {p: o for p, o in enumerate(ends) if o > 0}
    finally:
        c.close()


def bursts(kinds: list[tuple[str, bytes | None]]) -> tuple[Records, dict[str, list[str]]]:
    """Per kind, on its own key: BURST valid events, the record of that kind, BURST more valid events."""
    t = now_ms() - 600_000
    out: Records = []
    valid: dict[str, list[str]] = {}
    for kind, value in kinds:
        key = f"k-{kind}".encode()
        ids = [f"{kind}-{i:03d}" for i in range(2 * BURST)]
        valid[kind] = ids
        docs = [orjson.dumps(event(eid, t + i * 1000, cookie_id=f"ck-{kind}")) for i, eid in enumerate(ids)]
        out += [(key, d) for d in docs[:BURST]] + [(key, value)] + [(key, d) for d in docs[BURST:]]
    return out, valid


async def stitch_all(
    service_env: dict[str, str], infra: Infra, topics: Topics, records: Records
) -> tuple[Recording, StitcherMetrics]:
    """One stitcher worker: the records produced, handled and committed to the end of channel-events."""
    produce_raw(infra.bootstrap_servers, topics.channel_events, records)
    ends = end_offsets(infra.bootstrap_servers, topics.channel_events)
    settings = StitcherSettings.model_validate(worker_env(service_env))
    client = aioredis.Redis.from_url(settings.redis_url)
    loop, rec, metrics = worker(settings, client)

    def done() -> bool:
        return committed(infra.bootstrap_servers, settings.group_id, topics.channel_events) == ends

    await run_until(loop, done, "every record handled and committed to the end", timeout=90)
    await client.aclose()
    return rec, metrics


async def test_every_poison_kind_is_dead_lettered_alone_and_its_key_keeps_flowing(
    service_env: dict[str, str], infra: Infra, topics: Topics, redis_client: redis.Redis, key_prefix: str
) -> None:
    create_topics(infra.bootstrap_servers, topics)
    poison = channel_poison(event("p", now_ms() - 60_000, cookie_id="ck-poison"))
    odd = odd_but_valid(event("odd", now_ms() - 60_000, cookie_id="ck-odd"))
    records, valid = bursts([(p.kind, p.value) for p in poison])
    records += [(b"k-odd", value) for _, value in odd]
    rec, metrics = await stitch_all(service_env, infra, topics, records)
    assert retries(metrics.registry) == 0 and len(rec.handled) == len(records)  # each record handled once

    keys = Keys(key_prefix)
    for kind, ids in valid.items():  # every valid event of every burst is in its customer's journey
        cid = customer_of(redis_client, keys, lookup(service_env, "cookie_id", f"ck-{kind}"))
        assert cid is not None and journey_ids(redis_client, keys, cid) == ids, kind
    odd_cid = customer_of(redis_client, keys, lookup(service_env, "cookie_id", "ck-odd"))
    assert odd_cid is not None and journey_ids(redis_client, keys, odd_cid) == ["odd"]  # one id, 3 writes

    stitched = consume_all(infra.bootstrap_servers, topics.stitched_events, len(valid) * 2 * BURST + len(odd))
    got = {orjson.loads(r.value)["event_id"] for r in stitched}
    assert {i for ids in valid.values() for i in ids} <= got

    dead = consume_all(infra.bootstrap_servers, topics.dlq, len(poison))
    assert len(dead) == len(poison)  # one copy each: nothing was retried
    by_key = {r.key: (r, dict(r.headers)) for r in dead}
    for p in poison:
        copy, h = by_key[f"k-{p.kind}".encode()]
        assert h["dlq_reason"] == p.reason.encode(), (p.kind, h["dlq_detail"])
        assert h["dlq_id"] == b"/".join(
            [topics.channel_events.encode(), h["dlq_source_partition"], h["dlq_source_offset"]]
        )
        if len(p.value or b"") < MAX_COPY_BYTES - 1000:
            assert copy.value == (p.value or b""), p.kind
    big, h = by_key[b"k-oversized_copy_too_large"]
    assert h["dlq_truncated"] == b"value"
    assert h["dlq_original_bytes"] == str(FITS_BUT_ITS_COPY_DOES_NOT).encode()
    assert len(big.value) < FITS_BUT_ITS_COPY_DOES_NOT
    for reason in {p.reason for p in poison}:
        n = sum(1 for p in poison if p.reason == reason)
        sample = metrics.registry.get_sample_value("journeys_events_dead_lettered_total", {"reason": reason})
        assert sample == n, reason


def create_small_topics(bootstrap: str, topics: Topics, stitched_max: int, dlq_max: int) -> None:
    """The stitcher's topics, stitched-events and the DLQ with a small max.message.bytes."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [
        NewTopic(topics.channel_events, 4, 1),
        NewTopic(topics.identity_merges, 4, 1),
        NewTopic(topics.stitched_events, 4, 1, config={"max.message.bytes": str(stitched_max)}),
        NewTopic(topics.dlq, 4, 1, config={"max.message.bytes": str(dlq_max)}),
    ]
    for future in admin.create_topics(new).values():
        future.result(30)


async def test_records_the_broker_refuses_for_good_are_dead_lettered_not_retried_forever(
    service_env: dict[str, str], infra: Infra, topics: Topics, redis_client: redis.Redis, key_prefix: str
) -> None:
    # stitched-events takes 3 KB record batches, the DLQ 6 KB: a valid event with 32 long attributes stitches
    # into a record stitched-events refuses; a 20 KB malformed record's dead-letter copy is refused by the DLQ
    # (batches of small records are refused too at such limits: each refused record is tried alone first).
    create_small_topics(infra.bootstrap_servers, topics, stitched_max=3000, dlq_max=6000)
    t = now_ms() - 60_000
    big = event("big", t + 500, cookie_id="ck-1")
    big["attributes"] = {f"a{i:02d}": "v" * 100 for i in range(32)}  # 4 KB: fits the DLQ only
    items: list[bytes | None] = [
        orjson.dumps(event(f"v{i:02d}", t + i * 1000, cookie_id="ck-1")) for i in range(20)
    ]
    records: Records = [(b"k", v) for v in items[:10]] + [(b"k", orjson.dumps(big)), (b"k", b"{" * 20_000)]
    records += [(b"k", v) for v in items[10:]]
    rec, metrics = await stitch_all(service_env, infra, topics, records)
    assert retries(metrics.registry) == 0 and len(rec.handled) == len(records)
    undeliverable = {"reason": "undeliverable"}
    assert metrics.registry.get_sample_value("journeys_events_dead_lettered_total", undeliverable) == 1

    keys = Keys(key_prefix)
    cid = customer_of(redis_client, keys, lookup(service_env, "cookie_id", "ck-1"))
    assert cid is not None  # the big event was stitched into the journey; only its output was refused
    assert sorted(journey_ids(redis_client, keys, cid)) == sorted([f"v{i:02d}" for i in range(20)] + ["big"])
    stitched = consume_all(infra.bootstrap_servers, topics.stitched_events, 20)
    assert sorted(orjson.loads(r.value)["event_id"] for r in stitched) == [f"v{i:02d}" for i in range(20)]

    dead = consume_all(infra.bootstrap_servers, topics.dlq, 2)
    assert len(dead) == 2
    by_reason = {dict(r.headers)["dlq_reason"]: (r, dict(r.headers)) for r in dead}
    refused, h = by_reason[b"undeliverable"]
    assert refused.value == orjson.dumps(big) and h["dlq_failed_topic"] == topics.stitched_events.encode()
    assert h["dlq_source_offset"] == b"10" and b"MSG_SIZE_TOO_LARGE" in h["dlq_detail"]
    stripped, h = by_reason[b"malformed_json"]
    assert stripped.value == b"" and h["dlq_truncated"] == b"value,headers"
    assert h["dlq_original_bytes"] == b"20000" and h["dlq_source_offset"] == b"11"


class FailsOnceAfterFlushing:
    """Handles the batch, has the outbox flushed (dead letters acknowledged), then fails once: as a batch
    whose delivery failed on another record for a passing reason (the broker briefly away)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.failed = inner, False

    async def handle(self, records: list[Record], out: Outbox) -> None:
        await self.inner.handle(records, out)
        if not self.failed:
            await out.flush()
            self.failed = True
            raise DeliveryFailed(KafkaError(KafkaError._TRANSPORT, "the broker went away"))

    async def tick(self, out: Outbox) -> None:
        await self.inner.tick(out)


async def test_a_batch_retried_by_a_live_process_does_not_dead_letter_twice(
    service_env: dict[str, str], infra: Infra, topics: Topics, redis_client: redis.Redis
) -> None:
    create_topics(infra.bootstrap_servers, topics)
    t = now_ms() - 60_000
    bad = [b"{not json", b"[]", b"{" * 10]
    records: Records = [(b"k", orjson.dumps(event(f"v{i}", t + i, cookie_id="ck-r"))) for i in range(5)]
    records += [(b"k", v) for v in bad]
    produce_raw(infra.bootstrap_servers, topics.channel_events, records)
    ends = end_offsets(infra.bootstrap_servers, topics.channel_events)
    settings = StitcherSettings.model_validate(worker_env(service_env))
    client = aioredis.Redis.from_url(settings.redis_url)
    loop, rec, metrics = worker(settings, client)
    flaky = FailsOnceAfterFlushing(rec.inner)
    loop.handler = flaky

    def done() -> bool:
        return committed(infra.bootstrap_servers, settings.group_id, topics.channel_events) == ends

    await run_until(loop, done, "the batch retried and committed", timeout=90)
    await client.aclose()
    assert flaky.failed and retries(metrics.registry) >= 1
    assert loop.outbox.resends_skipped == len(bad)  # queued again by the retry, not sent again
    dead = consume_all(infra.bootstrap_servers, topics.dlq, len(bad))
    assert sorted(r.value for r in dead) == sorted(bad)  # once each
    assert len({dict(r.headers)["dlq_id"] for r in dead}) == len(bad)
