"""Worker CPU per stitched event in the gap detector, in-process: decode + rules + the Redis round trips
(load.lua, apply.lua, timer and drop-off claims on ticks), no Kafka.

    .venv/bin/python -m bench.detector.core_bench [--events 100000] [--batch 1000] [--profile]

Events come from the simulator (realistic customers, channel switches, stalls, late and duplicate
deliveries), turned into stitched_event.v1 documents with the true customer as customer_id. Redis is
the shared one (REDIS_URL) under a private key prefix that is deleted afterwards. Prints worker CPU
(process time) and Redis CPU (INFO cpu, before/after) per event.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
import uuid
import zlib
from typing import Any

import orjson
import redis.asyncio as aioredis

from services.common.kafka_loop import OutRecord, Record
from services.common.keys import Keys
from services.common.runtime import tune_gc
from services.common.timeutil import now_ms, parse_rfc3339_ms
from services.gap_detector.clock_store import ClockStore
from services.gap_detector.core.definitions import load_definitions
from services.gap_detector.core.logic import DetectorLogic
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.processor import DetectorProcessor, Evidence
from services.gap_detector.settings import GapDetectorSettings
from services.gap_detector.store import DetectorStore
from services.gap_detector.worker import alert_headers, alert_key
from services.simulator.generator import SimConfig, generate

PARTITIONS = 4
TICK_EVERY = 8  # batches per tick: at ~30k events/s and a 250 ms tick, about one tick per 8 batches
EVENTS_PER_CUSTOMER = 10.7  # what the simulator produces on average over its default 7 days


def stitched_doc(ev: dict[str, Any], cid: str, t: int) -> dict[str, Any]:
    """The stitched_event.v1 the stitcher writes for channel event ``ev`` (hashes of its identifiers)."""
    ids = ev["identifiers"]
    doc = {
        "schema_version": "1.0",
        "event_id": ev["event_id"],
        "occurred_at": ev["occurred_at"],
        "occurred_at_ms": t,
        "channel": ev["channel"],
        "touchpoint": ev["touchpoint"],
        "direction": ev.get("direction", "inbound"),
        "visibility": ev.get("visibility", "onstage"),
    }
    doc.update((k, v) for k, v in ev.items() if k not in doc and k != "identifiers")
    device = ids.get("device_id") or ids.get("cookie_id")
    if device:
        doc["device_key"] = hashlib.sha256(device.encode()).hexdigest()[:32]
    doc.update(
        customer_id=cid,
        identity_keys=[f"{k}:{hashlib.sha256(v.encode()).hexdigest()}" for k, v in sorted(ids.items())],
        masked={k: "•••• " + v[-4:] for k, v in ids.items()},
        stitched_at_ms=t,
    )
    return doc


def record(doc: dict[str, Any], offset: int) -> Record:
    cid = doc["customer_id"]
    part = zlib.crc32(cid.encode()) % PARTITIONS
    return Record("stitched-events", part, offset, cid.encode(), orjson.dumps(doc), {}, doc["occurred_at_ms"])


def simulated(n: int, seed: int) -> list[Record]:
    """``n`` stitched events from a simulated population (7 days, journeys with gaps, late and duplicate
    deliveries), in arrival order, the true customer as customer_id."""
    defs = load_definitions()
    pop = generate(SimConfig(customers=max(10, int(n / EVENTS_PER_CUSTOMER) + 1), seed=seed), defs)
    owner = {ev["event_id"]: cust for cust, evs in pop.events.items() for ev in evs}
    out: list[Record] = []
    for rec in pop.records:
        if rec.value is None:
            continue
        cid = "c_" + hashlib.sha256(owner[rec.value["event_id"]].encode()).hexdigest()[:16]
        out.append(record(stitched_doc(rec.value, cid, parse_rfc3339_ms(rec.value["occurred_at"])), len(out)))
        if len(out) == n:
            break
    return out


def customer_of(ids: dict[str, str]) -> int:
    """The customer number bench/stitcher/events.py drew the identifiers from (any one of them says)."""
    if "cookie_id" in ids:
        return int(ids["cookie_id"][3:], 16)  # ck_<hex>
    if "device_id" in ids:
        return int(ids["device_id"][4:], 16)  # dev-<hex>
    if "email" in ids:
        return int(ids["email"][8:].split("@")[0])  # customer<n>@example.com
    return int(ids["phone"][-5:])  # +4477009<nnnnn>


def uniform(n: int, seed: int, customers: int) -> list[Record]:
    """``n`` stitched events of bench/stitcher/events.py (what `python -m bench` feeds the pipeline): one
    hour of event time, ``customers`` customers picked at random, one journey type."""
    from bench.stitcher.events import events

    out: list[Record] = []
    for raw in events(n, customers, now_ms() - 7_200_000, seed=seed):
        ev = orjson.loads(raw)
        cid = f"c_{customer_of(ev['identifiers']):016x}"
        out.append(record(stitched_doc(ev, cid, parse_rfc3339_ms(ev["occurred_at"])), len(out)))
    return out


class CountingSink:
    """The processor's output, encoded as the worker encodes it, then dropped (no Kafka here)."""

    def __init__(self) -> None:
        self.alerts = 0

    async def publish(self, alerts: list[dict[str, Any]], docs: list[bytes]) -> None:
        self.alerts += len(alerts)
        for a, doc in zip(alerts, docs, strict=True):
            OutRecord("gap-alerts", alert_key(a), doc, alert_headers(a))

    def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        return None


async def redis_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def run(args: argparse.Namespace) -> None:
    records = (
        simulated(args.events, args.seed)
        if args.source == "simulator"
        else uniform(args.events, args.seed, args.customers)
    )
    if not args.default_gc:
        tune_gc()  # as the worker does (the generated records are frozen with everything else)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = GapDetectorSettings.model_validate(
        {"JOURNEYS_KEY_PREFIX": prefix, "JOURNEYS_TIMER_CLOCK": "event"}
    )
    client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=30)
    sink = CountingSink()
    store = DetectorStore(client, Keys(prefix), settings.retention_ms, settings.recent_alerts, args.cache)
    logic = DetectorLogic(load_definitions(), settings.buffer_events, settings.lateness_ms)
    proc = DetectorProcessor(settings, logic, store, DetectorMetrics(), ClockStore(client, Keys(prefix)))
    batches = [records[i : i + args.batch] for i in range(0, len(records), args.batch)]
    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    try:
        r0, c0, w0 = await redis_cpu(client), time.process_time(), time.perf_counter()
        t_events = t_ticks = 0.0
        for i, batch in enumerate(batches):
            t = time.process_time()
            await proc.on_events(batch, sink)
            t_events += time.process_time() - t
            if i % TICK_EVERY == TICK_EVERY - 1:
                t = time.process_time()
                await proc.on_tick(sink, Evidence())
                t_ticks += time.process_time() - t
        c1, w1, r1 = time.process_time(), time.perf_counter(), await redis_cpu(client)
    finally:
        if prof is not None:
            import pstats

            prof.disable()
            pstats.Stats(prof).sort_stats(args.sort).print_stats(40)
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            await client.delete(key)
        await client.aclose()
    n = len(records)
    cpu = c1 - c0
    print(
        f"{n} events in {len(batches)} batches of {args.batch}, {sink.alerts} alerts: "
        f"worker CPU {cpu / n * 1e6:.1f} us/event ({n / cpu:,.0f} events per CPU-second; "
        f"on_events {t_events / n * 1e6:.1f}, ticks {t_ticks / n * 1e6:.1f}), "
        f"Redis CPU {(r1 - r0) / n * 1e6:.1f} us/event, wall {n / (w1 - w0):,.0f} events/s; "
        f"state cache hits {store.cache.hits:,}, misses {store.cache.misses:,}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--source",
        choices=["simulator", "uniform"],
        default="simulator",
        help="simulator: a 7-day simulated population; uniform: bench/stitcher/events.py",
    )
    ap.add_argument("--customers", type=int, default=10_000, help="customers of --source uniform")
    ap.add_argument("--sort", default="tottime", help="profile order (pstats key, e.g. cumulative)")
    ap.add_argument("--default-gc", action="store_true", help="keep Python's default GC thresholds")
    ap.add_argument(
        "--cache", type=int, default=GapDetectorSettings().state_cache, help="JOURNEYS_DETECTOR_STATE_CACHE"
    )
    ap.add_argument(
        "--profile", action="store_true", help="profile the timed part (cProfile), print the top 40"
    )
    args = ap.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
