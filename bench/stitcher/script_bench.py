"""Cost of the stitcher's Redis scripts (identity.lua, journey.lua and the fold steps) per event, in Redis
and in the client. No Kafka.

    .venv/bin/python -m bench.stitcher.script_bench [--events 100000] [--warmup 100000] [--customers 30000]
        [--batch 1000] [--redis-url redis://…]   # default: a private redis-server, as the local stack runs it

Events are bench/stitcher/events.py's (~400 bytes, 2-3 identifiers of 4 per customer, so first events
mint separate ids that later ones merge), prepared by the worker's pure core (not timed here). A warm-up
fills the graph and journeys (~30k customers) before the measured run, so the figure is a steady state.
Redis CPU is INFO cpu (used_cpu_user + used_cpu_sys) before/after, over the events stitched: only this
benchmark should use that server, hence the private one (--appendonly yes, appendfsync everysec: every
write the script makes is also fed to the AOF, as in the local stack). Client: the store's whole stitch()
call (building arguments, parsing replies, the fold steps), CPU time of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import redis.asyncio as aioredis

from bench.stitcher.events import events
from services.common.keys import Keys
from services.common.redis_conn import connect
from services.stitcher.adapters.redis_store import RedisStitchStore
from services.stitcher.core.batch import Prepared, bare_record, prepare
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.hashed_identifiers import IdentifierHasher
from services.stitcher.settings import parse_limits


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a free loopback port (AOF on, no RDB), stopped at the end."""
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is not on PATH: install it or pass --redis-url")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="script-bench-") as data:
        proc = subprocess.Popen(
            [
                server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                data,
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


async def redis_cpu_s(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def command_calls(client: aioredis.Redis) -> Counter[str]:
    stats = await client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


CALIBRATE = """
for i = 1, #ARGV - 1 do
  if ARGV[#ARGV] == 'HSET' then
    redis.call('HSET', ARGV[i], 'yardstick', i)
  elseif ARGV[#ARGV] == 'HGET' then
    redis.call('HGET', ARGV[i], 'first_seen_ms')
  end
end
return 1
"""


async def calibrate(client: aioredis.Redis, keys: Keys, n: int = 20_000) -> dict[str, float]:
    """Redis CPU of one HGET / one HSET from Lua on customer hashes of the data set, each touched once in
    random order (cold, as the script finds them): the yardstick for the script's figure."""
    names = [k async for k in client.scan_iter(match=keys.customer("*"), count=5000)][:n]
    random.Random(1).shuffle(names)
    script = client.register_script(CALIBRATE)
    out = {}
    for op in ("loop", "HGET", "HSET"):
        cpu0 = await redis_cpu_s(client)
        await script(args=[*names, op])
        out[op] = (await redis_cpu_s(client) - cpu0) / max(1, len(names)) * 1e6
    return {op: max(0.0, us - out["loop"]) for op, us in out.items() if op != "loop"}


async def run(
    url: str,
    batches: list[list[Prepared]],
    warm: int,
    now_ms: int,
    cap: int,
    retention_ms: int,
    identity_only: bool = False,
) -> None:
    client = cast(aioredis.Redis, connect(url))  # the figures read INFO of one server
    keys = Keys(f"bench{os.getpid()}")
    store = RedisStitchStore(client, keys, parse_limits(""), cap, retention_ms)

    async def phase(part: list[list[Prepared]]) -> dict[str, Any]:
        n = sum(len(b) for b in part)
        calls0, cpu0 = await command_calls(client), await redis_cpu_s(client)
        t_client = 0.0
        merges = written = 0
        for batch in part:
            c0 = time.process_time()
            if identity_only:  # identity.lua alone: the identity graph's share, its one-slot ceiling
                resolutions, _ = await store.resolve(batch, now_ms)
            else:
                done = await store.stitch(batch, now_ms)
                resolutions = [s.resolution for s in done]
                written += sum(s.status == 1 for s in done)
            t_client += time.process_time() - c0
            merges += sum(o.kind == "merge" for r in resolutions for o in r.outcomes)
        cpu = await redis_cpu_s(client) - cpu0
        calls = await command_calls(client) - calls0
        calls.pop("info", None)
        scripts = calls.pop("evalsha", 0)
        return {
            "n": n,
            "redis_us": cpu / n * 1e6,
            "client_us": t_client / n * 1e6,
            "scripts": scripts,
            "merges": merges,
            "written": written,
            "calls": calls,
        }

    try:
        for name, part in (("warm-up", batches[:warm]), ("measured", batches[warm:])):
            if not part:
                continue
            r = await phase(part)
            n = r["n"]
            per_event = ", ".join(f"{c} {k / n:.2f}" for c, k in r["calls"].most_common())
            print(
                f"{name}: {n:,} events in {len(part)} batches, {r['merges']} merges, {r['written']:,} written"
            )
            print(
                f"  Redis CPU {r['redis_us']:.1f} us/event | client CPU {r['client_us']:.1f} us/event | "
                f"{r['scripts'] / len(part):.1f} script calls per batch"
            )
            print(f"  redis.call per event: {sum(r['calls'].values()) / n:.2f} ({per_event})")
        cal = await calibrate(client, keys)
        print(
            "yardstick: one redis.call from Lua on a customer hash of this data set (cold) costs "
            + ", ".join(f"{op} {us:.2f} us" for op, us in cal.items())
            + " of Redis CPU"
        )
    finally:
        async for key in client.scan_iter(match=f"{keys.prefix}:*", count=1000):
            await client.delete(key)
        await client.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="events measured (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=100_000, help="events stitched first, not measured")
    ap.add_argument("--customers", type=int, default=30_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--cap", type=int, default=1000, help="JOURNEYS_MAX_TOUCHPOINTS")
    ap.add_argument("--retention-ms", type=int, default=90 * 86_400_000)
    ap.add_argument("--redis-url", help="a Redis nobody else uses (INFO cpu is server-wide)")
    ap.add_argument(
        "--identity-only",
        action="store_true",
        help="run identity.lua alone: the identity graph's cost, whose one slot is the ceiling",
    )
    args = ap.parse_args()
    now = int(time.time() * 1000)
    hasher, policy = IdentifierHasher(b"k", "GB"), DecodePolicy()
    values = list(events(args.warmup + args.events, args.customers, now - 7_200_000))
    batches = [
        prepare([bare_record(v) for v in values[i : i + args.batch]], hasher, now, policy).ready
        for i in range(0, len(values), args.batch)
    ]
    warm = args.warmup // args.batch
    print(
        f"{len(values):,} events, {args.customers:,} customers, batches of {args.batch}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    if args.redis_url:
        asyncio.run(run(args.redis_url, batches, warm, now, args.cap, args.retention_ms, args.identity_only))
    else:
        with private_redis() as url:
            asyncio.run(run(url, batches, warm, now, args.cap, args.retention_ms, args.identity_only))


if __name__ == "__main__":
    main()
