"""Agent lookup latency benchmark (run by hand, not a test).

    .venv/bin/python -m bench.api.lookup_latency --customers 100000 --rate 500 --seconds 30

0. starts a private redis-server (/usr/bin/redis-server) on a free loopback port, so no other Redis
   traffic is measured (--redis-url to use an existing one instead);
1. writes --customers journeys (6 touchpoints, phone + e-mail each, 1 in 10 with an open alert) into
   Redis in the journey-store layout, under a fresh key prefix;
2. starts `journeys api` as its own process;
3. an open-loop client sends GET /api/v1/journeys/lookup?phone=… for random customers at a steady --rate
   (phones written in varied formats, so normalisation is part of the work); latency is measured from
   each request's *scheduled* send time, so a stalled server cannot hide queueing (no coordinated
   omission);
4. prints p50/p90/p99/max and the server's own journeys_lookup_latency_seconds histogram.
The run's Redis keys are deleted at the end (--keep to keep them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import aiohttp
import redis
import uvloop
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from services.common.keys import Keys
from services.common.settings import CommonSettings
from tests.integration.api.journey_seed import Customer, queue_customer
from tests.integration.api.process import free_port

TOKEN = "bench-token"
CHANNELS = ("web", "mobile_app", "email", "phone", "chat", "sms")
# The same number as agents type it: the API must normalise each the way the stitcher did.
FORMATS = (
    "+44 74{0:02d} {1:06d}",
    "074{0:02d}{1:06d}",
    "+4474{0:02d}{1:06d}",
    "(074{0:02d}) {2:03d} {3:03d}",
)


def phone(i: int, style: int = 0) -> str:
    hi, lo = divmod(i, 1_000_000)
    return FORMATS[style].format(hi, lo, lo // 1000, lo % 1000)


def customer(i: int, t0: int) -> Customer:
    events = []
    for n in range(6):
        ms = t0 + i * 1000 + n * 600_000
        events.append(
            {
                "event_id": f"b{i}-{n}",
                "occurred_at": _iso(ms),
                "channel": CHANNELS[(i + n) % 6],
                "touchpoint": "checkout_payment" if n == 2 else "page_view",
                "direction": "outbound" if n == 3 else "inbound",
                "journey": {"type": "purchase", "stage": ("browse", "cart", "payment")[min(n, 2)]},
                "sentiment": round(((i + n) % 20) / 10 - 1, 1),
            }
        )
    alerts = []
    if i % 10 == 0:
        alerts.append(
            {
                "schema_version": "1.0",
                "alert_id": f"a_{i:016x}",
                "type": "channel_switch",
                "severity": "high",
                "customer_id": f"c_{i:016x}",
                "detected_at": events[3]["occurred_at"],
                "occurred_at": events[3]["occurred_at"],
                "evidence": {"event_ids": [f"b{i}-2", f"b{i}-3"], "channels": ["web", "phone"]},
            }
        )
    return Customer(
        f"c_{i:016x}", {"phone": phone(i), "email": f"bench.{i}@example.com"}, events, open_alerts=alerts
    )


def _iso(ms: int) -> str:
    from services.common.timeutil import format_ms

    return format_ms(ms)


def seed(r: redis.Redis, keys: Keys, settings: CommonSettings, n: int, console: Console) -> None:
    t0 = 1_790_000_000_000
    with Progress(console=console) as progress:
        task = progress.add_task(f"writing {n:,} journeys", total=n)
        for start in range(0, n, 1000):
            pipe = r.pipeline(transaction=False)
            for i in range(start, min(n, start + 1000)):
                queue_customer(pipe, keys, settings, customer(i, t0))
            pipe.execute()
            progress.update(task, advance=min(1000, n - start))


def drop(r: redis.Redis, prefix: str, console: Console) -> None:
    with console.status("deleting the run's keys"):
        batch = []
        for key in r.scan_iter(match=f"{prefix}:*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                r.unlink(*batch)
                batch.clear()
        if batch:
            r.unlink(*batch)


async def load(base: str, customers: int, rate: int, seconds: float) -> tuple[list[float], Counter[str]]:
    """Open loop: request k is due at start + k/rate; its latency counts from then."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    total = int(rate * seconds)
    rng = random.Random(7)
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(
        base, connector=conn, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as session:

        async def one(due: float, number: str) -> None:
            try:
                async with session.get("/api/v1/journeys/lookup", params={"phone": number}) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors[f"HTTP {resp.status}"] += 1
            except aiohttp.ClientError as exc:
                errors[type(exc).__name__] += 1
            latencies.append(time.perf_counter() - due)

        start = time.perf_counter() + 0.1
        tasks = []
        for k in range(total):
            due = start + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due, phone(rng.randrange(customers), rng.randrange(4)))))
        await asyncio.gather(*tasks)
    return latencies, errors


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def server_histogram(base: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return "\n".join(
        line
        for line in text.splitlines()
        if line.startswith("journeys_lookup_latency_seconds_bucket") and 'by="phone"' in line
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=500, help="lookups per second")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    ap.add_argument("--keep", action="store_true", help="keep the run's Redis keys")
    ap.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    args = ap.parse_args()
    console = Console()
    with ExitStack() as stack:
        url = args.redis_url or stack.enter_context(private_redis())
        return run(args, console, url)


@contextmanager
def private_redis() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "/usr/bin/redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        r = redis.Redis(port=port)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(args: argparse.Namespace, console: Console, url: str) -> int:
    settings = CommonSettings.model_validate({**os.environ, "REDIS_URL": url})
    prefix = f"bench-api-{uuid.uuid4().hex[:8]}"
    r = redis.Redis.from_url(url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "REDIS_URL": url,
        "JOURNEYS_KEY_PREFIX": prefix,
        "JOURNEYS_API_PORT": str(port),
        "JOURNEYS_API_TOKEN": TOKEN,
        "JOURNEYS_LOG_LEVEL": "WARNING",
    }
    proc = None
    try:
        seed(r, Keys(prefix), settings, args.customers, console)
        proc = subprocess.Popen([str(Path(sys.executable).with_name("journeys")), "api"], env=env)
        with console.status("starting journeys api"):
            uvloop.run(_wait_healthy(base))
        uvloop.run(load(base, args.customers, args.rate, args.warmup))
        with console.status(f"{args.rate} lookups/s for {args.seconds:.0f}s"):
            latencies, errors = uvloop.run(load(base, args.customers, args.rate, args.seconds))
        table = Table(title=f"lookup by phone, {args.customers:,} customers, {args.rate}/s open loop")
        for col in ("requests", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms"):
            table.add_column(col, justify="right")
        table.add_row(
            str(len(latencies)),
            ", ".join(f"{k}: {v}" for k, v in errors.items()) or "0",
            *(f"{quantile(latencies, q) * 1000:.2f}" for q in (0.5, 0.9, 0.99, 1.0)),
        )
        console.print(table)
        # Other processes share the two cores: say how busy the machine was while measuring.
        console.print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        console.print("server-side journeys_lookup_latency_seconds (by=phone, cumulative):")
        console.print(server_histogram(base))
        return 0 if not errors else 1
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        if not args.keep:
            drop(r, prefix, console)


async def _wait_healthy(base: str) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            try:
                async with s.get(f"{base}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("journeys api did not start")


if __name__ == "__main__":
    sys.exit(main())
