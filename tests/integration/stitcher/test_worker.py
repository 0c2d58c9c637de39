"""The stitcher worker end to end on a real Kafka and Redis (`journeys stitcher` in a subprocess)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from services.common.contracts import IDENTITY_MERGE, STITCHED_EVENT, first_error
from services.common.keys import Keys
from services.common.timeutil import now_ms
from tests.conftest import Infra, Topics
from tests.helpers import poll
from tests.integration.stitcher.support import (
    committed,
    consume_all,
    create_topics,
    event,
    group_of,
    killed_before_its_first_commit,
    produce,
    stitcher,
)

pytestmark = pytest.mark.integration


def customer_of(r: redis.Redis, keys: Keys, id_key_lookup: str) -> str | None:
    value = r.get(keys.identifier(id_key_lookup))
    return value.decode() if isinstance(value, bytes) else None


def journey_ids(r: redis.Redis, keys: Keys, cid: str) -> list[str]:
    return [m.decode() for m in r.zrange(keys.timeline(cid), 0, -1)]  # type: ignore[union-attr]


def lookup(env: dict[str, str], id_type: str, raw: str) -> str:
    from services.stitcher.core.identifiers import lookup_key
    from services.stitcher.settings import StitcherSettings

    key = lookup_key(StitcherSettings.model_validate(env), id_type, raw)
    assert key is not None
    return key


def test_late_events_are_placed_by_event_time_and_bad_input_is_dead_lettered(
    infra: Infra,
    topics: Topics,
    service_env: dict[str, str],
    redis_client: Any,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    create_topics(infra.bootstrap_servers, topics)
    t = now_ms() - 3_600_000
    produce(
        infra.bootstrap_servers,
        topics.channel_events,
        [
            event("late-3", t + 3000, cookie_id="ck_late"),
            event("late-1", t + 1000, cookie_id="ck_late"),
            event("late-2", t + 2000, channel="phone", cookie_id="ck_late"),
        ],
        partition=0,
    )
    produce(
        infra.bootstrap_servers,
        topics.channel_events,
        [b"{not json"],
        key=b"k-1",
        headers=[("trace", b"abc")],
        partition=1,
    )
    future = event("future", now_ms() + 3_600_000, cookie_id="c")
    produce(infra.bootstrap_servers, topics.channel_events, [future])
    with stitcher(service_env, tmp_path / "w.log"):
        keys = Keys(key_prefix)
        cid = poll(
            lambda: customer_of(redis_client, keys, lookup(service_env, "cookie_id", "ck_late")),
            what="the customer",
        )
        poll(lambda: len(journey_ids(redis_client, keys, cid)) == 3, what="three touchpoints")
        assert journey_ids(redis_client, keys, cid) == ["late-1", "late-2", "late-3"]
        summary = {k.decode(): v.decode() for k, v in redis_client.hgetall(keys.summary(cid)).items()}
        assert summary["last_channel"] == "web" and summary["count"] == "3" and summary["ch:phone"] == "1"
        dead = consume_all(infra.bootstrap_servers, topics.dlq, 2)
    by_reason = {dict(r.headers)["dlq_reason"]: r for r in dead}
    assert set(by_reason) == {b"malformed_json", b"bad_timestamp"}
    bad = by_reason[b"malformed_json"]
    headers = dict(bad.headers)
    assert bad.value == b"{not json" and bad.key == b"k-1" and headers["trace"] == b"abc"
    assert headers["dlq_source_topic"] == topics.channel_events.encode()
    assert headers["dlq_source_partition"] == b"1" and headers["dlq_source_offset"] == b"0"
    assert headers["dlq_detail"] and int(headers["dlq_at_ms"]) > 0


def test_a_merge_split_across_partitions_at_the_same_time(
    infra: Infra,
    topics: Topics,
    service_env: dict[str, str],
    redis_client: Any,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    """Two workers, each half of every customer on a different partition, produced at once."""
    create_topics(infra.bootstrap_servers, topics)
    n, t = 40, now_ms() - 600_000
    halves: list[list[dict[str, Any]]] = [[], [], [], []]
    for i in range(n):
        halves[0].append(event(f"a{i}", t + i, cookie_id=f"ck-{i}"))
        halves[1].append(event(f"b{i}", t + i + 1, email=f"p{i}@shop.com"))
        halves[2].append(event(f"c{i}", t + i + 2, cookie_id=f"ck-{i}", email=f"p{i}@shop.com"))
        halves[3].append(event(f"d{i}", t + i + 3, email=f"p{i}@shop.com", phone=f"07700 9{i:05d}"))
    with stitcher(service_env, tmp_path / "w1.log"), stitcher(service_env, tmp_path / "w2.log"):
        for partition, items in enumerate(halves):
            produce(infra.bootstrap_servers, topics.channel_events, items, partition=partition)
        keys = Keys(key_prefix)

        def all_stitched() -> bool:
            cids = {
                customer_of(redis_client, keys, lookup(service_env, "email", f"p{i}@shop.com"))
                for i in range(n)
            }
            return (
                None not in cids and sum(len(journey_ids(redis_client, keys, c)) for c in cids if c) == 4 * n
            )

        poll(all_stitched, timeout=60, what="every event in its customer's journey")
    for i in range(n):
        cid = customer_of(redis_client, keys, lookup(service_env, "email", f"p{i}@shop.com"))
        assert cid is not None
        assert customer_of(redis_client, keys, lookup(service_env, "cookie_id", f"ck-{i}")) == cid
        assert customer_of(redis_client, keys, lookup(service_env, "phone", f"07700 9{i:05d}")) == cid
        assert journey_ids(redis_client, keys, cid) == [f"a{i}", f"b{i}", f"c{i}", f"d{i}"]
        assert redis_client.hget(keys.summary(cid), "count") == b"4"


def test_a_worker_killed_before_its_commit_is_redelivered_and_nothing_doubles(
    infra: Infra,
    topics: Topics,
    service_env: dict[str, str],
    redis_client: Any,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    create_topics(infra.bootstrap_servers, topics)
    n, t = 3000, now_ms() - 600_000
    # First half: 300 cookie-only customers; second half links cookies j and j+150 through p(j % 150).
    items = [event(f"e{i}", t + i, cookie_id=f"ck-{i % 300}") for i in range(n // 2)]
    items += [
        event(f"e{i}", t + i, cookie_id=f"ck-{i % 300}", email=f"p{i % 150}@shop.com")
        for i in range(n // 2, n)
    ]
    produce(infra.bootstrap_servers, topics.channel_events, items)
    keys = Keys(key_prefix)

    def written() -> int:
        return sum(
            int(redis_client.hget(k, "count") or 0)
            for k in redis_client.scan_iter(match=f"{key_prefix}:*:sum", count=1000)
        )

    # A real worker process, SIGKILLed between its first batch's Redis writes and that batch's commit.
    status = killed_before_its_first_commit(
        service_env, tmp_path / "w1.log", JOURNEYS_STITCHER_BATCH_SIZE="100"
    )
    assert status == -signal.SIGKILL, (tmp_path / "w1.log").read_text()[-3000:]
    first = written()
    assert first > 0, "the killed worker's batch should be in Redis"
    assert committed(infra.bootstrap_servers, group_of(service_env), topics.channel_events) == {}

    with stitcher(service_env, tmp_path / "w2.log"):
        poll(lambda: written() == n, timeout=90, what=f"{n} touchpoints")
        poll(
            lambda: (
                sum(committed(infra.bootstrap_servers, group_of(service_env), topics.channel_events).values())
                == n
            ),
            what="every offset committed",
        )
        # Cross-partition order decides how many links are merges; each merge leaves exactly one alias.
        aliases = len(list(redis_client.scan_iter(match=keys.alias("*"), count=1000)))
        assert aliases > 0
        merges = consume_all(
            infra.bootstrap_servers,
            topics.identity_merges,
            aliases,
            distinct=lambda r: orjson.loads(r.value)["record_id"],
        )
        stitched = consume_all(infra.bootstrap_servers, topics.stitched_events, n + first)
    cids = {
        customer_of(redis_client, keys, lookup(service_env, "email", f"p{i}@shop.com")) for i in range(150)
    }
    assert len(cids) == 150
    total = 0
    for cid in cids:
        assert cid is not None
        ids = journey_ids(redis_client, keys, cid)
        assert len(ids) == len(set(ids)) == int(redis_client.hget(keys.summary(cid), "count"))
        total += len(ids)
    assert total == n  # every event once: the killed batch's touchpoints were found, not added again
    assert {orjson.loads(m.value)["kind"] for m in merges} == {"merge"}
    assert len({orjson.loads(m.value)["record_id"] for m in merges}) == aliases
    # The killed batch was produced, then redelivered and produced again (same event ids).
    assert len(stitched) >= n + first
    assert len({orjson.loads(r.value)["event_id"] for r in stitched}) == n


def test_a_merge_beyond_a_limit_is_a_conflict_and_nothing_merges(
    infra: Infra,
    topics: Topics,
    service_env: dict[str, str],
    redis_client: Any,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    create_topics(infra.bootstrap_servers, topics)
    t = now_ms() - 600_000
    produce(
        infra.bootstrap_servers,
        topics.channel_events,
        [
            event("u1", t, customer_id="CUST-1", device_id="kiosk-7"),
            event("u2", t + 1, customer_id="CUST-2", cookie_id="ck-2"),
            event("u3", t + 2, device_id="kiosk-7", cookie_id="ck-2"),
        ],
        partition=0,
    )
    with stitcher(service_env, tmp_path / "w.log"):
        records = consume_all(infra.bootstrap_servers, topics.identity_merges, 1)
        stitched = consume_all(infra.bootstrap_servers, topics.stitched_events, 3)
    keys = Keys(key_prefix)
    c1 = customer_of(redis_client, keys, lookup(service_env, "customer_id", "CUST-1"))
    c2 = customer_of(redis_client, keys, lookup(service_env, "customer_id", "CUST-2"))
    assert c1 and c2 and c1 != c2
    (record,) = [orjson.loads(r.value) for r in records]
    assert (record["kind"], record["survivor"], record["loser"], record["limit"]) == (
        "conflict",
        c1,
        c2,
        "customer_id",
    )
    assert redis_client.get(keys.alias(c2)) is None
    u3 = next(orjson.loads(r.value) for r in stitched if orjson.loads(r.value)["event_id"] == "u3")
    assert u3["customer_id"] == c1 and u3["merge_conflict"] is True
    partition_of: dict[bytes, int] = {}
    for r in stitched:  # contract, CloudEvents headers, and one partition per customer
        assert first_error(STITCHED_EVENT, orjson.loads(r.value)) is None
        assert dict(r.headers)["ce_type"] == b"dev.journeys.stitched_event.v1"
        assert partition_of.setdefault(r.key or b"", r.partition) == r.partition
    assert first_error(IDENTITY_MERGE, record) is None
