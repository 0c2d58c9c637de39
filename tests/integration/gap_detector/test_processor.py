"""The processor against a real Redis (alerts collected instead of produced, so no broker is needed):
drop-off spikes judged once per cell-minute with their gauges, late stalls counted into old cells."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from services.common.kafka_loop import Record
from services.common.keys import Keys
from services.common.progress import InputProgress
from services.common.timeutil import format_ms
from services.gap_detector.clock_store import ClockStore
from services.gap_detector.core.alerts import alert_id
from services.gap_detector.core.definitions import load_definitions
from services.gap_detector.core.logic import DetectorLogic
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.processor import DetectorProcessor, Evidence
from services.gap_detector.settings import GapDetectorSettings
from services.gap_detector.store import DetectorStore, StateConflict
from services.stitcher.adapters.progress_store import ProgressStore
from tests.conftest import Infra
from tests.integration.gap_detector.harness import stitched

pytestmark = pytest.mark.integration

T0 = 1_793_599_980_000  # a minute boundary
MIN = 60_000


class Harness:
    def __init__(self, infra: Infra, key_prefix: str, **extra: str) -> None:
        env = {
            "REDIS_URL": infra.redis_url,
            "JOURNEYS_KEY_PREFIX": key_prefix,
            "JOURNEYS_TIMER_CLOCK": "event",
            **extra,
        }
        self.settings = GapDetectorSettings.model_validate(env)
        self.client = aioredis.Redis.from_url(infra.redis_url)
        self.metrics = DetectorMetrics()
        self.published: list[dict[str, Any]] = []
        self.dead: list[tuple[bytes, str]] = []
        store = DetectorStore(self.client, Keys(key_prefix), self.settings.retention_ms, 100, cache_size=1000)
        logic = DetectorLogic(load_definitions(), lateness_ms=self.settings.lateness_ms)
        self.proc = DetectorProcessor(
            self.settings, logic, store, self.metrics, ClockStore(self.client, Keys(key_prefix))
        )
        self.progress = ProgressStore(self.client, Keys(key_prefix))
        self.newest = 0  # what feed() delivered: tick() proves it unless a test proves inputs itself
        self.explicit = False

    # The processor's sink: alerts collected instead of produced.
    async def publish(self, alerts: list[dict[str, Any]], docs: list[bytes]) -> None:
        self.published.extend(alerts)

    def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        self.dead.append((record.value or b"", reason))

    async def events(self, records: list[Record]) -> int:
        return await self.proc.on_events(records, self)

    async def prove(self, partitions: int, reports: dict[int, InputProgress]) -> None:
        """What a stitcher would publish about its input (services/common/progress.py)."""
        self.explicit = True
        await self.progress.publish(partitions, reports)

    async def tick(self, seen_ms: int | None = None) -> int:
        """A tick of a detector that has read its one input partition through ``seen_ms`` (default: now);
        unless the test proves inputs itself, one input partition stitched through what feed() gave."""
        now = int(time.time() * 1000)
        if not self.explicit and self.newest:
            await self.progress.publish(1, {0: InputProgress(self.newest, now, now)})
        seen = {"stitched-events:0": now if seen_ms is None else seen_ms}
        return await self.proc.on_tick(self, Evidence(seen, list(seen)))

    async def feed(self, docs: list[dict[str, Any]]) -> None:
        self.newest = max([self.newest, *(d["occurred_at_ms"] for d in docs)])
        await self.events([rec(d["customer_id"].encode(), orjson.dumps(d)) for d in docs])

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [a for a in self.published if a["type"] == kind]


def rec(key: bytes, value: bytes, partition: int = 0) -> Record:
    return Record("stitched-events", partition, 0, key, value, {})


def minute_events(minute: int, n: int, abandoned: int) -> list[dict[str, Any]]:
    t = T0 + minute * MIN
    return [
        stitched(
            f"m{minute}-{i}",
            f"c_{minute:08x}{i:08x}",
            t + i,
            "web",
            journey={"type": "purchase", "stage": "payment"},
            **({"outcome": "abandoned"} if i < abandoned else {}),
        )
        for i in range(n)
    ]


async def test_dropoff_spike_is_raised_once_with_gauges(
    infra: Infra, key_prefix: str, redis_client: Any
) -> None:
    h = Harness(infra, key_prefix)
    for minute in range(30):  # the baseline: 5 % of 20 per minute
        await h.feed(minute_events(minute, 20, 1))
    await h.feed(minute_events(30, 20, 10))  # 50 %: a spike
    await h.feed([stitched("adv", "c_ffffffffffffffff", T0 + 37 * MIN, "web")])  # watermark past minute 31
    await h.tick()
    await h.tick()
    # Minute 0 has no history (baseline floored at 1 %: 5 % is a spike too); minutes 1-29 are quiet.
    spikes = {a["evidence"]["minute"]: a for a in h.of("dropoff_spike")}
    assert len(spikes) == len(h.of("dropoff_spike")) == 2
    spike = spikes[format_ms(T0 + 30 * MIN)]
    assert spike["journey"] == {"type": "purchase", "stage": "payment"} and spike["severity"] == "critical"
    assert spike["evidence"]["minute"].startswith("2026-") and spike["evidence"]["volume"] == 20
    assert spike["evidence"]["rate"] == 0.5 and spike["evidence"]["baseline"] == 0.05
    rate = h.metrics.registry.get_sample_value(
        "journeys_dropoff_rate", {"journey": "purchase", "stage": "payment", "channel": "web"}
    )
    assert rate is not None
    keys = Keys(key_prefix)
    assert await h.client.hexists(keys.alerts_by_id, spike["alert_id"])
    await h.client.aclose()


async def test_bad_records_are_dead_lettered_and_the_batch_goes_on(
    infra: Infra, key_prefix: str, redis_client: Any
) -> None:
    h = Harness(infra, key_prefix)
    good = [
        stitched("a", "c_00000000000000a1", T0, "web", intent="x"),
        stitched("b", "c_00000000000000a1", T0 + MIN, "phone", intent="x"),
    ]
    records = [rec(b"k", b"{oops"), rec(b"k", orjson.dumps({"event_id": "x"}))]
    records += [rec(b"c", orjson.dumps(d)) for d in good]
    assert await h.events(records) == 1
    assert [r for _, r in h.dead] == ["malformed_json", "schema_violation"]
    assert (
        h.metrics.registry.get_sample_value(
            "journeys_events_dead_lettered_total", {"reason": "schema_violation"}
        )
        == 1
    )
    await h.client.aclose()


async def test_an_input_partition_stitched_ahead_does_not_fire_another_partitions_stall(
    infra: Infra, key_prefix: str, redis_client: Any
) -> None:
    h = Harness(infra, key_prefix, JOURNEYS_WATERMARK_IDLE="1s")
    pay = {"type": "purchase", "stage": "payment"}  # sla 1h
    x = stitched("x", "c_00000000000000b1", T0, "web", journey=pay)
    await h.events([rec(b"b1", orjson.dumps(x))])
    now = int(time.time() * 1000)
    # Input partition 0 is stitched 3 h ahead; partition 1 (x's) only through x, and still growing.
    await h.prove(2, {0: InputProgress(T0 + 180 * MIN, now, now), 1: InputProgress(T0, now, now)})
    await h.tick()
    assert h.of("stall") == []  # partition 1's next event may be x's progress
    y = stitched("y", "c_00000000000000b1", T0 + 30 * MIN, "web", journey=pay)
    await h.events([rec(b"b1", orjson.dumps(y))])
    await h.prove(2, {1: InputProgress(T0 + 30 * MIN, now, now)})
    await h.tick()
    assert h.of("stall") == []  # y came within x's SLA: x never stalls
    # Partition 1 drained and quiet for longer than the idle time: the newest event time holds.
    later = now + 1_000
    quiet = {0: InputProgress(T0 + 180 * MIN, later, now), 1: InputProgress(T0 + 30 * MIN, later, now)}
    await h.prove(2, quiet)
    await h.tick(seen_ms=later + 1)
    assert [a["evidence"]["event_ids"] for a in h.of("stall")] == [["y"]]
    await h.client.aclose()


async def test_a_backlog_or_a_detector_behind_delays_a_live_stall_never_invents_it(
    infra: Infra, key_prefix: str, redis_client: Any
) -> None:
    h = Harness(infra, key_prefix, JOURNEYS_TIMER_CLOCK="live", JOURNEYS_WATERMARK_LATENESS="0s")
    pay = {"type": "purchase", "stage": "payment"}  # sla 1h
    now = int(time.time() * 1000)
    t0 = now - 24 * 60 * MIN  # a day ago: on the wall clock x's deadline is long past
    await h.events([rec(b"d1", orjson.dumps(stitched("x", "c_00000000000000d1", t0, "web", journey=pay)))])
    # The stitcher was down: partition 1 is stitched only through x and not drained since the outage.
    await h.prove(2, {0: InputProgress(now, now, now), 1: InputProgress(t0, t0, now)})
    await h.tick()
    assert h.of("stall") == []
    # It catches up: x's successor was queued all along (23 h later: past the 1 h SLA, a real stall) ...
    y = stitched("y", "c_00000000000000d1", t0 + 30 * MIN, "web", journey=pay)
    await h.events([rec(b"d1", orjson.dumps(y))])
    await h.prove(2, {1: InputProgress(t0 + 30 * MIN, now, now)})
    # ... but this detector has not read its inputs since before the stitcher's report: still nothing.
    await h.tick(seen_ms=now - 60_000)
    assert h.of("stall") == []
    await h.tick()  # read through: y's own stage stalls (its deadline is past on every clock), not x's
    assert [a["evidence"]["event_ids"] for a in h.of("stall")] == [["y"]]
    await h.client.aclose()


async def test_events_landing_in_a_judged_minute_rejudge_it(
    infra: Infra, key_prefix: str, redis_client: Any
) -> None:
    h = Harness(infra, key_prefix)
    for minute in range(30):
        await h.feed(minute_events(minute, 20, 1))
    await h.feed([stitched("adv", "c_ffffffffffffffff", T0 + 37 * MIN, "web")])
    await h.tick()  # minutes up to 31 are judged: minute 30 is still empty
    assert format_ms(T0 + 30 * MIN) not in {a["evidence"]["minute"] for a in h.of("dropoff_spike")}
    await h.feed(minute_events(30, 20, 10))  # a fast replay delivers minute 30 only now
    await h.tick()
    assert format_ms(T0 + 30 * MIN) in {a["evidence"]["minute"] for a in h.of("dropoff_spike")}
    await h.client.aclose()


async def test_a_state_changed_by_another_worker_between_load_and_save_fails_the_batch_whole(
    infra: Infra, key_prefix: str, redis_client: Any
) -> None:
    h, other = Harness(infra, key_prefix), Harness(infra, key_prefix)
    cid = "c_00000000000000c1"
    await h.feed([stitched("a", cid, T0, "web", intent="x")])
    interfere = [True]
    save = h.proc.store.save

    async def interfere_then_save(batch: Any, now: int) -> None:
        if interfere.pop() if interfere else False:  # another worker writes this customer, once
            await other.feed([stitched("b", cid, T0 + 10_000, "web", intent="y")])
        await save(batch, now)

    h.proc.store.save = interfere_then_save  # type: ignore[method-assign]
    call = [rec(cid.encode(), orjson.dumps(stitched("c", cid, T0 + MIN, "phone", intent="x")))]
    with pytest.raises(StateConflict):
        await h.events(call)
    assert h.published == []  # an alert goes out only once the state that raised it is saved
    keys = Keys(key_prefix)

    async def buffered() -> list[str]:
        return [e[1] for e in orjson.loads(await h.client.hget(keys.detector_state(cid), "buf") or b"[]")]

    assert await buffered() == ["a", "b"]  # nothing of the refused batch was written
    assert not await h.client.hexists(keys.open_alerts(cid), alert_id("channel_switch", cid, "c"))
    assert await h.events(call) == 1  # the retry starts from the state the other worker wrote
    assert await buffered() == ["a", "b", "c"]
    assert await h.client.hexists(keys.open_alerts(cid), alert_id("channel_switch", cid, "c"))
    await h.client.aclose()
    await other.client.aclose()


async def test_alerts_go_out_once_saved_and_a_failed_publish_is_swept_from_the_outbox(
    infra: Infra, key_prefix: str, redis_client: Any
) -> None:
    def resent(h: Harness) -> float:
        return h.metrics.registry.get_sample_value("journeys_alerts_resent_total") or 0.0

    keys = Keys(key_prefix)
    h = Harness(infra, key_prefix)
    cid = "c_00000000000000e1"
    await h.feed([stitched("a", cid, T0, "web", intent="x")])
    save, fail = h.proc.store.save, [True]

    async def failing_once(batch: Any, now: int) -> None:
        if fail and fail.pop():
            raise ConnectionError("Redis went away")
        await save(batch, now)

    h.proc.store.save = failing_once  # type: ignore[method-assign]
    call = [rec(cid.encode(), orjson.dumps(stitched("c", cid, T0 + MIN, "phone", intent="x")))]
    with pytest.raises(ConnectionError):
        await h.events(call)
    assert h.published == []  # nothing out before the save
    assert await h.events(call) == 1  # the loop retries the batch
    switch = alert_id("channel_switch", cid, "c")
    assert [a["alert_id"] for a in h.published] == [switch] and resent(h) == 0
    saved = orjson.loads(await h.client.hget(keys.alerts_by_id, switch))
    assert saved == h.published[0] and await h.client.zcard(keys.alerts_outbox) == 0
    # A worker that saves and then cannot publish (the broker went away, or it died): the alert waits in
    # the outbox, and a sweep (any worker's tick, after the grace period) publishes it once.
    dead, heir = Harness(infra, key_prefix), Harness(infra, key_prefix)

    async def broker_gone(alerts: list[dict[str, Any]], docs: list[bytes]) -> None:
        raise ConnectionError("broker unreachable")

    dead.publish = broker_gone  # type: ignore[method-assign]
    again = [rec(cid.encode(), orjson.dumps(stitched("d", cid, T0 + 2 * MIN, "sms", intent="x")))]
    with pytest.raises(ConnectionError):
        await dead.events(again)
    assert await dead.events(again) == 0  # the retry finds the batch saved: nothing raised again
    assert await h.client.zcard(keys.alerts_outbox) == 1
    await heir.tick()
    assert heir.published == []  # within the grace period the worker that saved it may still publish
    [member] = await h.client.zrange(keys.alerts_outbox, 0, -1)
    await h.client.zadd(keys.alerts_outbox, {member: 0})  # the grace period is over
    # Meanwhile a late event retracted it (saved into the customer's outbox by a live worker, not yet
    # published): the sweep publishes the alert as it is now, never the stale open copy.
    assert member.decode() == f"{cid}|{alert_id('channel_switch', cid, 'd')}"
    box, aid = keys.customer_outbox(cid), member.decode().rpartition("|")[2]
    retracted = {**orjson.loads(await h.client.hget(box, aid)), "status": "closed"}
    await h.client.hset(box, aid, orjson.dumps(retracted))
    await heir.tick()
    await heir.tick()
    assert [a["alert_id"] for a in heir.published] == [alert_id("channel_switch", cid, "d")]
    assert heir.published[0]["status"] == "closed"
    assert resent(heir) == 1 and await h.client.zcard(keys.alerts_outbox) == 0
    assert await h.client.hlen(box) == 0
    assert orjson.loads(await h.client.hget(keys.alerts_by_id, aid))["status"] == "closed"
    for x in (h, dead, heir):
        await x.client.aclose()


async def test_a_dropoff_spike_survives_a_failed_publish(
    infra: Infra, key_prefix: str, redis_client: Any
) -> None:
    h = Harness(infra, key_prefix)
    for minute in range(30):
        await h.feed(minute_events(minute, 20, 1))
    await h.feed(minute_events(30, 20, 10))
    await h.feed([stitched("adv", "c_ffffffffffffffff", T0 + 37 * MIN, "web")])
    publish, fail = h.publish, [True]

    async def broker_down_once(alerts: list[dict[str, Any]], docs: list[bytes]) -> None:
        if fail and fail.pop():
            raise ConnectionError("broker unreachable")
        await publish(alerts, docs)

    h.publish = broker_down_once  # type: ignore[method-assign]
    for _ in range(3):  # the watermark moves on the second tick (evidence noted, then seen through)
        try:
            await h.tick()
        except ConnectionError:
            break  # judged and saved with its cell-minute marked, then the publish failed
    assert not fail, "the spike was never published"
    await h.tick()
    assert h.of("dropoff_spike") == []  # the saving worker's publish failed: it waits in the outbox
    outbox = Keys(key_prefix).alerts_outbox
    await h.client.zadd(outbox, dict.fromkeys(await h.client.zrange(outbox, 0, -1), 0))  # grace over
    await h.tick()
    minutes = [a["evidence"]["minute"] for a in h.of("dropoff_spike")]
    assert format_ms(T0 + 30 * MIN) in minutes and len(minutes) == len(set(minutes)) == 2
    await h.client.aclose()


async def test_one_record_per_alert_id_and_batch(infra: Infra, key_prefix: str, redis_client: Any) -> None:
    h = Harness(infra, key_prefix)
    cid = "c_00000000000000f7"
    # c arrives last but happened before e: within the batch e's repeat_contact goes from 3 to 4 contacts.
    docs = [
        stitched(i, cid, T0 + n * MIN, "phone", intent="refund")
        for i, n in (("a", 0), ("b", 1), ("e", 3), ("c", 2))
    ]
    await h.events([rec(cid.encode(), orjson.dumps(d)) for d in docs])
    ids = [a["alert_id"] for a in h.published]
    assert len(ids) == len(set(ids))
    [e] = [a for a in h.of("repeat_contact") if a["alert_id"] == alert_id("repeat_contact", cid, "e")]
    assert e["severity"] == "high" and e["evidence"]["count"] == 4
    stored = orjson.loads(await h.client.hget(Keys(key_prefix).alerts_by_id, e["alert_id"]))
    assert stored["severity"] == "high"
    await h.client.aclose()


async def test_an_outbox_left_by_the_previous_version_is_still_published(
    infra: Infra, key_prefix: str, redis_client: Any
) -> None:
    # Before outboxes per customer, the index member was the alert's JSON itself: an upgrade sweeps it too.
    h = Harness(infra, key_prefix)
    cid = "c_00000000000000f8"
    alert = {
        **stitched("x", cid, T0),
        "alert_id": alert_id("channel_switch", cid, "x"),
        "type": "channel_switch",
        "status": "open",
        "severity": "medium",
    }
    await h.client.zadd(Keys(key_prefix).alerts_outbox, {orjson.dumps(alert): 0})
    await h.tick()
    assert [a["alert_id"] for a in h.published] == [alert["alert_id"]]
    assert await h.client.zcard(Keys(key_prefix).alerts_outbox) == 0
    await h.client.aclose()
