"""No valid record is lost to a bad one in the gap detector's loop, on a real broker and Redis: per poison
kind, a burst of valid stitched events on ONE customer key with the poison record in the middle, and a
burst of valid identity merges on one survivor key with malformed merge records in the middle. Every valid
event ends in its customer's state (merged losers' events in the survivor's), every poison record in the
DLQ with its reason (a copy too large for the broker cut to fit), offsets committed to the end of both
topics, and no batch retried (no crash loop)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from services.common.keys import Keys
from services.gap_detector.settings import GapDetectorSettings
from tests.conftest import Infra, Topics
from tests.integration.gap_detector.harness import create_topics, detector_env, stitched
from tests.integration.gap_detector.test_commits import T0, committed, detector
from tests.integration.loop.support import Recording, Running
from tests.integration.stitcher.support import consume_all
from tests.integration.stitcher.test_poison import Records, end_offsets, produce_raw, retries
from tests.poison import FITS_BUT_ITS_COPY_DOES_NOT, Poison, merge_poison, stitched_poison

pytestmark = pytest.mark.integration

BURST = 8
PAY = {"type": "purchase", "stage": "payment"}
SURVIVOR = "c_00000000000000aa"


@pytest.fixture
def settings(
    service_env: dict[str, str], key_prefix: str, infra: Infra, topics: Topics
) -> GapDetectorSettings:
    create_topics(infra, topics)
    return GapDetectorSettings.model_validate(
        detector_env(service_env, key_prefix, JOURNEYS_DETECTOR_BUFFER_EVENTS="200")
    )


@pytest.fixture
def client(settings: GapDetectorSettings, redis_client: Any) -> Iterator[aioredis.Redis]:
    yield aioredis.Redis.from_url(settings.redis_url)


def customer(n: int) -> str:
    return f"c_{n:016x}"


def merge(survivor: str, loser: str, n: int) -> dict[str, Any]:
    return {
        "schema_version": "1.0",
        "record_id": f"m_{n}",
        "kind": "merge",
        "survivor": survivor,
        "loser": loser,
        "event_id": f"x{n}",
        "recorded_at_ms": T0,
    }


async def buffered(client: aioredis.Redis, keys: Keys, cid: str) -> bytes:
    value = await client.hget(keys.detector_state(cid), "buf")
    return value if isinstance(value, bytes) else b""


async def test_every_poison_kind_is_dead_lettered_alone_and_its_key_keeps_flowing(
    settings: GapDetectorSettings, client: aioredis.Redis, infra: Infra, topics: Topics, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    doc = stitched("p", customer(1), T0, "web", journey=PAY)
    poison = stitched_poison(doc)
    events: Records = []
    valid: dict[str, list[str]] = {}
    for n, p in enumerate(poison, start=1):  # a customer (and key) per kind
        cid = customer(n)
        ids = [f"{p.kind}-{i:03d}" for i in range(2 * BURST)]
        valid[cid] = ids
        docs = [
            orjson.dumps(stitched(eid, cid, T0 + i * 1000, "web", journey=PAY)) for i, eid in enumerate(ids)
        ]
        events += [(cid.encode(), d) for d in docs[:BURST]] + [(cid.encode(), p.value)]
        events += [(cid.encode(), d) for d in docs[BURST:]]

    # Merges: losers with an event each, then a burst of merges into one survivor (one key) with malformed
    # merge records in the middle, and a survivor merged with itself (valid, odd: nothing may be lost).
    bad_merges = merge_poison(merge(SURVIVOR, customer(999), 0))
    losers = [customer(100 + i) for i in range(2 * BURST)]
    events += [
        (lo.encode(), orjson.dumps(stitched(f"lost-{i:03d}", lo, T0 + i, "web", journey=PAY)))
        for i, lo in enumerate(losers)
    ]
    events += [(SURVIVOR.encode(), orjson.dumps(stitched("own", SURVIVOR, T0, "web", journey=PAY)))]
    merges: Records = [
        (SURVIVOR.encode(), orjson.dumps(merge(SURVIVOR, lo, i))) for i, lo in enumerate(losers)
    ]
    merges = merges[:BURST] + [(SURVIVOR.encode(), p.value) for p in bad_merges] + merges[BURST:]
    merges.insert(BURST, (SURVIVOR.encode(), orjson.dumps(merge(SURVIVOR, SURVIVOR, 500))))
    rec, metrics = await events_then_merges(settings, client, infra, topics, events, merges)
    assert retries(metrics.registry) == 0 and len(rec.handled) == len(events) + len(merges)

    for cid, ids in valid.items():  # every valid event of every burst is in its customer's state
        buf = await buffered(client, keys, cid)
        assert all(b'"' + i.encode() + b'"' in buf for i in ids), cid
    # Every valid merge was applied (a folded loser keeps no state of its own), the self-merge lost nothing.
    assert [lo for lo in losers if await client.exists(keys.detector_state(lo))] == []
    survivor = await buffered(client, keys, SURVIVOR)
    assert [
        i
        for i in ["own", *(f"lost-{n:03d}" for n in range(len(losers)))]
        if b'"' + i.encode() + b'"' not in survivor
    ] == []

    everything: list[Poison] = [*poison, *bad_merges]
    dead = consume_all(infra.bootstrap_servers, topics.dlq, len(everything))
    assert len(dead) == len(everything)  # one copy each
    got = sorted((dict(r.headers)["dlq_source_topic"], dict(r.headers)["dlq_reason"]) for r in dead)
    assert got == sorted(
        [(topics.stitched_events.encode(), p.reason.encode()) for p in poison]
        + [(topics.identity_merges.encode(), p.reason.encode()) for p in bad_merges]
    )
    [big] = [r for r in dead if dict(r.headers).get("dlq_truncated")]
    h = dict(big.headers)
    assert h["dlq_truncated"] == b"value"
    assert h["dlq_original_bytes"] == str(FITS_BUT_ITS_COPY_DOES_NOT).encode()
    for p in [*poison, *bad_merges]:
        if p.value is not None and len(p.value) < 100_000:
            assert any(r.value == p.value for r in dead), p.kind
    await client.aclose()


async def events_then_merges(
    settings: GapDetectorSettings,
    client: aioredis.Redis,
    infra: Infra,
    topics: Topics,
    events: Records,
    merges: Records,
) -> tuple[Recording, Any]:
    """One detector: the stitched events handled and committed to the end, then the merge records."""
    loop, rec, metrics = detector(settings, client)
    running = Running(loop)
    try:  # the losers' events are in before their merges come
        ends: dict[tuple[str, int], int] = {}
        for topic, records, what in (
            (topics.stitched_events, events, "stitched event"),
            (topics.identity_merges, merges, "merge record"),
        ):
            produce_raw(infra.bootstrap_servers, topic, records)
            ends |= {(topic, p): o for p, o in end_offsets(infra.bootstrap_servers, topic).items()}
            reached = functools.partial(_committed_to, infra, settings.group_id, topics, dict(ends))
            await running.until(reached, f"every {what} handled and committed to the end", timeout=90)
    finally:
        await running.close()
    return rec, metrics


def _committed_to(infra: Infra, group: str, topics: Topics, ends: dict[tuple[str, int], int]) -> bool:
    return committed(infra, group, topics) == ends


async def run_merges(
    settings: GapDetectorSettings,
    client: aioredis.Redis,
    infra: Infra,
    topics: Topics,
    customers: list[str],
    pairs: list[tuple[str, str]],
) -> float:
    """Each customer's event, committed; then the merge records, in one batch; returns the retries."""
    events: Records = [
        (x.encode(), orjson.dumps(stitched(f"ev-{x}", x, T0 + i, "web", journey=PAY)))
        for i, x in enumerate(customers)
    ]
    merges: Records = [(s.encode(), orjson.dumps(merge(s, lo, i))) for i, (s, lo) in enumerate(pairs)]
    _, metrics = await events_then_merges(settings, client, infra, topics, events, merges)
    return retries(metrics.registry)


async def test_odd_but_valid_merges_neither_stall_nor_drop_events(
    settings: GapDetectorSettings, client: aioredis.Redis, infra: Infra, topics: Topics, key_prefix: str
) -> None:
    # A merge cycle (A <- B, then B <- A), a loser nobody has seen, a self-merge.
    a, b = customer(200), customer(201)
    assert (
        await run_merges(
            settings, client, infra, topics, [a, b], [(a, b), (b, a), (a, customer(999)), (a, a)]
        )
        == 0
    )
    held = b"".join([await buffered(client, Keys(key_prefix), x) for x in (a, b)])
    assert f'"ev-{a}"'.encode() in held and f'"ev-{b}"'.encode() in held
    await client.aclose()


async def test_a_merge_chain_in_one_batch_folds_into_its_end(
    settings: GapDetectorSettings, client: aioredis.Redis, infra: Infra, topics: Topics, key_prefix: str
) -> None:
    c, d, e = customer(210), customer(211), customer(212)
    assert await run_merges(settings, client, infra, topics, [c, d, e], [(d, e), (c, d)]) == 0
    survivor = await buffered(client, Keys(key_prefix), c)
    await client.aclose()
    assert [x for x in (c, d, e) if f'"ev-{x}"'.encode() not in survivor] == []
