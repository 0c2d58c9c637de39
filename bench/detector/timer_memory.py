"""Memory held per pending stall timer (run by hand, not a test).

    .venv/bin/python -m bench.detector.timer_memory --timers 1000000

Starts a private redis-server (no persistence) on a free port, then arms --timers stall timers exactly
as the worker does: each customer's event goes through the detector core (DetectorLogic.on_item) and the
batch is written by DetectorStore.save (apply.lua) - the customer's state hash and the timer ZSET member.
Reports Redis used_memory before/after, the bytes per pending timer (everything the detector keeps for
it) and the timer ZSET alone (MEMORY USAGE), then that due timers are claimable in bounded batches.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import time

import redis.asyncio as aioredis
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.detector.common import free_port
from services.common.keys import Keys
from services.gap_detector.core.definitions import load_definitions
from services.gap_detector.core.logic import DetectorLogic
from services.gap_detector.core.model import Entry
from services.gap_detector.core.state import CustomerState
from services.gap_detector.store import DetectorStore
from services.gap_detector.store_types import Loaded, Save

console = Console()
T0 = 1_793_599_980_000
BATCH = 5000


async def arm(client: aioredis.Redis, keys: Keys, n: int) -> float:
    store = DetectorStore(client, keys, retention_ms=90 * 86_400_000, recent_max=10_000)
    logic = DetectorLogic(load_definitions())
    t0 = time.perf_counter()
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("arming timers", total=n)
        for start in range(0, n, BATCH):
            save = Save()
            for i in range(start, min(n, start + BATCH)):
                cid = f"c_{i:016x}"
                entry = Entry(
                    T0 + i,
                    f"ev-{i:08d}",
                    "web",
                    True,
                    True,
                    "onboarding",
                    "identity_verification",
                    "open_account",
                    None,
                    None,
                    f"{i:032x}",
                    "phone",
                )
                loaded = Loaded(cid, CustomerState())
                step = logic.on_item(cid, loaded.state, entry, T0)
                save.customers.append(loaded)
                save.write_state.add(cid)
                save.add_cells(cid, step.cells)
            await store.save(save, T0)
            bar.update(task, completed=min(n, start + BATCH))
    return time.perf_counter() - t0


async def measure(port: int, n: int) -> None:
    client = aioredis.Redis(host="127.0.0.1", port=port)
    keys = Keys("mem")
    before = int((await client.info("memory"))["used_memory"])
    took = await arm(client, keys, n)
    after = int((await client.info("memory"))["used_memory"])
    pending = await client.zcard(keys.timers)
    zset = int(await client.memory_usage(keys.timers, samples=0) or 0)
    store = DetectorStore(client, keys, 1, 1)
    t = time.perf_counter()
    claimed = await store.claim_timers(T0 + 10 * 86_400_000, T0, 30_000, 2000)
    claim_ms = (time.perf_counter() - t) * 1000
    await client.aclose()
    table = Table(title=f"{pending:,} pending stall timers (armed in {took:.0f} s)")
    table.add_column("measure")
    table.add_column("value")
    table.add_row("used_memory delta", f"{(after - before) / 2**20:,.0f} MiB")
    table.add_row("bytes per pending timer (state + timer)", f"{(after - before) / max(pending, 1):,.0f}")
    per_timer = zset / max(pending, 1)
    table.add_row("timer ZSET alone (MEMORY USAGE)", f"{zset / 2**20:,.0f} MiB = {per_timer:.0f} B/timer")
    table.add_row("claim of 2000 due timers", f"{len(claimed)} in {claim_ms:.1f} ms")
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timers", type=int, default=1_000_000)
    args = ap.parse_args()
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", tmp]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)  # redis-server binds within milliseconds; the first command retries anyway
            asyncio.run(measure(port, args.timers))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
