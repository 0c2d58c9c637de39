"""The detector worker on real Kafka + Redis: stalls fire exactly once with two workers, pending timers
survive a restart, a merge moves a pending timer, bad input is dead-lettered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.common.keys import Keys
from tests.conftest import Infra, Topics
from tests.helpers import poll
from tests.integration.gap_detector.harness import (
    AlertReader,
    TopicReader,
    Worker,
    create_topics,
    detector_env,
    produce,
    prove_stitched,
    stitched,
)

pytestmark = pytest.mark.integration

T0 = 1_793_599_980_000
HOUR, LATENESS = 3_600_000, 300_000
PAY = {"type": "purchase", "stage": "payment"}  # sla 1h


def cid(n: int) -> str:
    return f"c_{n:016x}"


def advancer(t: int) -> dict[str, Any]:
    """An unrelated event at t: with the stitcher's evidence (prove_stitched) the watermark reaches
    t - lateness."""
    return stitched(f"adv-{t}", cid(0xFFFF), t, "web")


@pytest.fixture
def env(service_env: dict[str, str], key_prefix: str, infra: Infra, topics: Topics) -> dict[str, str]:
    create_topics(infra, topics)
    return detector_env(service_env, key_prefix)


@pytest.fixture
def alerts(infra: Infra, topics: Topics) -> Iterator[AlertReader]:
    reader = AlertReader(infra, topics.gap_alerts)
    yield reader
    reader.close()


def test_two_workers_fire_each_stall_exactly_once(
    env: dict[str, str],
    infra: Infra,
    topics: Topics,
    tmp_path: Path,
    alerts: AlertReader,
    key_prefix: str,
    redis_client: Any,
) -> None:
    workers = [Worker(env, tmp_path / f"w{i}.log") for i in range(2)]
    try:
        for w in workers:
            w.wait_ready()
        n = 60
        produce(
            infra,
            topics.stitched_events,
            [stitched(f"x{i}", cid(i + 1), T0 + i, "web", journey=PAY) for i in range(n)],
        )
        keys = Keys(key_prefix)
        poll(lambda: redis_client.zcard(keys.timers) == n, timeout=60, what="all timers armed")
        produce(infra, topics.stitched_events, [advancer(T0 + HOUR + LATENESS + n)])
        prove_stitched(redis_client, key_prefix, T0 + HOUR + LATENESS + n)
        poll(lambda: len(alerts.of("stall")) >= n, timeout=60, what=f"{n} stall alerts")
        poll(
            lambda: redis_client.zcard(keys.timers) + redis_client.zcard(keys.timers_inflight) == 0,
            timeout=30,
            what="no timer left pending or in flight",
        )
        alerts.read()  # anything a second firing could have produced is on the topic by now
        counts = Counter(a["alert_id"] for a in alerts.of("stall"))
        assert len(counts) == n and set(counts.values()) == {1}, counts
        assert {a["evidence"]["event_ids"][0] for a in alerts.of("stall")} == {f"x{i}" for i in range(n)}
        assert all(a["severity"] == "high" for a in alerts.of("stall"))  # payment has importance 3
        open_alerts = redis_client.hgetall(keys.open_alerts(cid(1)))
        assert [orjson.loads(v)["type"] for v in open_alerts.values()] == ["stall"]
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0], [w.log.read_text()[-2000:] for w in workers]


def test_restart_keeps_pending_timers(
    env: dict[str, str],
    infra: Infra,
    topics: Topics,
    tmp_path: Path,
    alerts: AlertReader,
    key_prefix: str,
    redis_client: Any,
) -> None:
    keys = Keys(key_prefix)
    first = Worker(env, tmp_path / "first.log")
    try:
        first.wait_ready()
        produce(
            infra,
            topics.stitched_events,
            [stitched(f"r{i}", cid(i + 1), T0 + i, "web", journey=PAY) for i in range(5)],
        )
        poll(lambda: redis_client.zcard(keys.timers) == 5, timeout=60, what="5 timers armed")
    finally:
        assert first.stop() == 0, first.log.read_text()[-2000:]
    assert alerts.of("stall") == []
    second = Worker(env, tmp_path / "second.log")
    try:
        second.wait_ready()
        produce(infra, topics.stitched_events, [advancer(T0 + HOUR + LATENESS + 10)])
        prove_stitched(redis_client, key_prefix, T0 + HOUR + LATENESS + 10)
        poll(lambda: len(alerts.of("stall")) == 5, timeout=60, what="5 stalls after the restart")
    finally:
        assert second.stop() == 0


def test_merge_moves_pending_timer_and_joins_the_journeys(
    env: dict[str, str],
    infra: Infra,
    topics: Topics,
    tmp_path: Path,
    alerts: AlertReader,
    key_prefix: str,
    redis_client: Any,
) -> None:
    keys = Keys(key_prefix)
    loser, survivor = cid(0xA), cid(0xB)
    worker = Worker(env, tmp_path / "w.log")
    try:
        worker.wait_ready()
        produce(
            infra,
            topics.stitched_events,
            [stitched("app-1", loser, T0, "mobile_app", journey=PAY, outcome="failure")],
        )
        poll(lambda: redis_client.zscore(keys.timers, f"{loser}|purchase"), timeout=60, what="loser timer")
        # What the stitcher writes on a merge: the alias, the reverse index, then the merge record.
        redis_client.set(keys.alias(loser), survivor)
        redis_client.sadd(keys.aliases_of(survivor), loser)
        merge = {
            "schema_version": "1.0",
            "record_id": "m_1",
            "kind": "merge",
            "survivor": survivor,
            "loser": loser,
            "event_id": "call-1",
            "recorded_at_ms": T0,
        }
        produce(infra, topics.identity_merges, [merge], key_field="survivor")
        poll(
            lambda: redis_client.zscore(keys.timers, f"{survivor}|purchase") == T0 + HOUR,
            timeout=60,
            what="the pending timer moved to the survivor",
        )
        assert redis_client.zscore(keys.timers, f"{loser}|purchase") is None
        assert not redis_client.exists(keys.detector_state(loser))
        produce(
            infra, topics.stitched_events, [stitched("call-1", survivor, T0 + 600_000, "phone", journey=PAY)]
        )
        [switch] = poll(lambda: alerts.of("channel_switch"), timeout=60, what="channel_switch")
        assert switch["customer_id"] == survivor and switch["severity"] == "high"
        assert switch["evidence"]["event_ids"] == ["app-1", "call-1"]
        # Bad input is dead-lettered with its bytes and reason, and the worker keeps going.
        produce_raw(infra, topics.stitched_events, b"{not json")
        dlq = TopicReader(infra, topics.dlq)
        try:
            [got] = poll(dlq.read, timeout=60, what="dead letter")
        finally:
            dlq.close()
        assert got.value() == b"{not json" and dict(got.headers())["dlq_reason"] == b"malformed_json"
    finally:
        assert worker.stop() == 0


def produce_raw(infra: Infra, topic: str, value: bytes) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    producer.send(topic, value=value).get(timeout=30)
    producer.close()
