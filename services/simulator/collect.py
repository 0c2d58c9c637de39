"""Reading back what the pipeline produced: topics from the beginning until idle, aliases from Redis."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson

from services.common.errors import UserError
from services.common.keys import Keys
from services.common.limits import MAX_ALIAS_HOPS


def _consumer(bootstrap: str, security: dict[str, Any] | None = None) -> Any:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        return KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
            bootstrap_timeout_ms=10_000,
            **(security or {}),  # TLS/SASL: services.common.kafka_config.kafka_python_config
        )
    except KafkaError as exc:
        raise UserError(f"no Kafka broker answers at {bootstrap}: {exc}") from None


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    idle_s: float = 3.0,
    max_wait_s: float = 120.0,
    security: dict[str, Any] | None = None,
) -> list[bytes]:
    """Every value on ``topic`` from the beginning, stopping once the end is reached and nothing new came
    for ``idle_s`` (or after ``max_wait_s`` in total). A topic that never appears reads as empty."""
    return [
        value
        for _, value in read_records(
            bootstrap, topic, idle_s=idle_s, max_wait_s=max_wait_s, security=security
        )
    ]


def read_records(
    bootstrap: str,
    topic: str,
    *,
    idle_s: float = 3.0,
    max_wait_s: float = 120.0,
    security: dict[str, Any] | None = None,
) -> list[tuple[bytes | None, bytes]]:
    """(key, value) of every record on ``topic``, read as ``read_topic`` says."""
    from kafka import TopicPartition

    consumer = _consumer(bootstrap, security)
    out: list[tuple[bytes | None, bytes]] = []
    try:
        deadline = time.monotonic() + max_wait_s
        appear_by = time.monotonic() + min(max_wait_s, max(idle_s, 5.0))
        parts = None
        while time.monotonic() < appear_by:
            consumer.topics()  # refresh metadata
            parts = consumer.partitions_for_topic(topic)
            if parts:
                break
            time.sleep(0.2)  # polling for the topic to appear
        if not parts:
            return out
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        last = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300, max_records=5000)
            got = [(r.key, r.value) for recs in batch.values() for r in recs]
            out.extend(got)
            now = time.monotonic()
            if got:
                last = now
                continue
            ends = consumer.end_offsets(tps)
            if all(consumer.position(tp) >= ends[tp] for tp in tps) and now - last >= idle_s:
                break
    finally:
        consumer.close()
    return out


def count_topic(bootstrap: str, topic: str, security: dict[str, Any] | None = None) -> int:
    """Records currently on a topic (end minus beginning offsets), 0 when it does not exist."""
    from kafka import TopicPartition

    consumer = _consumer(bootstrap, security)
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            return 0
        tps = [TopicPartition(topic, p) for p in parts]
        ends, begins = consumer.end_offsets(tps), consumer.beginning_offsets(tps)
        return sum(ends[tp] - begins[tp] for tp in tps)
    finally:
        consumer.close()


def decode_all(values: Iterable[bytes]) -> list[dict[str, Any]]:
    out = []
    for v in values:
        try:
            doc = orjson.loads(v)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


def resolve_aliases(
    redis_client: Any, keys: Keys, customer_ids: Iterable[str], max_hops: int = MAX_ALIAS_HOPS
) -> dict[str, str]:
    """customer id -> final survivor, following Keys.alias chains (one pipeline round trip per hop)."""
    final = {c: c for c in set(customer_ids)}
    pending = list(final)
    for _ in range(max_hops):
        if not pending:
            break
        pipe = redis_client.pipeline(transaction=False)
        current = [final[c] for c in pending]
        for cid in current:
            pipe.get(keys.alias(cid))
        nxt = []
        for cid, target in zip(pending, pipe.execute(), strict=True):
            if target:
                final[cid] = target.decode() if isinstance(target, bytes) else str(target)
                nxt.append(cid)
        pending = nxt
    return final


def stitched_customers(stitched: Iterable[dict[str, Any]], redis_client: Any, keys: Keys) -> dict[str, str]:
    """event_id -> final customer id, from stitched events and the alias chains in Redis."""
    first: dict[str, str] = {}
    for ev in stitched:
        if "event_id" in ev and "customer_id" in ev:
            first.setdefault(ev["event_id"], ev["customer_id"])
    final = resolve_aliases(redis_client, keys, first.values())
    return {e: final[c] for e, c in first.items()}


def timelines(redis_client: Any, keys: Keys, customer_ids: Iterable[str]) -> dict[str, set[str]]:
    """customer id -> event ids in its journey timeline (the journey store), one pipeline."""
    cids = sorted(set(customer_ids))
    pipe = redis_client.pipeline(transaction=False)
    for cid in cids:
        pipe.zrange(keys.timeline(cid), 0, -1)
    return {
        cid: {m.decode() if isinstance(m, bytes) else str(m) for m in members}
        for cid, members in zip(cids, pipe.execute(), strict=True)
    }
