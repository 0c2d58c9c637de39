"""CPU cost of the stitcher's pure hot path per event, by step, no I/O.

    .venv/bin/python -m bench.stitcher.core_bench [--events 100000] [--old REV] [--profile]

decode: bytes -> typed, validated channel event; prepare: decode + identifiers (warm LRU cache) +
mint + touchpoint JSON + summary facts; outputs: stitched-event and merge records ready to produce
(value encoded, key, CloudEvents headers). The identity graph (Redis's job) runs untimed in between.
Times are process CPU time, the least of ``--repeat`` runs. ``--old REV`` also runs the same steps on
the code of git revision REV (before typed records: decode, prepare, outputs + orjson.dumps + the old
worker's OutRecord and headers), for a before/after on one machine.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.stitcher.events import events
from services.common.timeutil import now_ms
from services.stitcher.core.batch import OutTopics, bare_record, outputs, prepare
from services.stitcher.core.decode import DecodePolicy, decode
from services.stitcher.core.hashed_identifiers import IdentifierHasher
from services.stitcher.core.identity import IdentityGraph
from services.stitcher.settings import parse_limits

BATCH = 1000
ROOT = Path(__file__).resolve().parents[2]

# The same three steps against the API before typed records (services as of the given revision).
OLD = """
import gc, time, orjson
from bench.stitcher.events import events
from services.stitcher.core.batch import Raw, outputs, prepare
from services.stitcher.core.decode import DecodePolicy, decode
from services.stitcher.core.identity import IdentityGraph
from services.stitcher.core.hashed_identifiers import IdentifierHasher
from services.stitcher.settings import parse_limits
n, now, B = {n}, {now}, {batch}
values = list(events(n, {customers}, now - 7_200_000))
raws = [Raw(v, None, {{}}) for v in values]
policy, hasher, graph = DecodePolicy(), IdentifierHasher(b"k", "GB"), IdentityGraph(parse_limits(""))
def best(step):
    times = []
    for _ in range({repeat}):
        t = time.process_time()
        step()
        times.append(time.process_time() - t)
    return min(times)
from services.common.timeutil import format_ms
from services.stitcher.adapters.kafka_batch import OutRecord
from services.stitcher.worker import ce_headers
resolutions = []
for s in range(0, n, B):
    sp = prepare(raws[s:s + B], hasher, now, policy)
    resolutions.append([graph.resolve(p.event["event_id"], p.occurred_ms, [i.key for i in p.idents], p.mint)
                        for p in sp.ready])
gc.collect()
gc.freeze()
t_prep, t_out = [], []
for _ in range({repeat}):
    tp = to = 0.0
    for b, s in enumerate(range(0, n, B)):
        t = time.process_time()
        sp = prepare(raws[s:s + B], hasher, now, policy)
        tp += time.process_time() - t
        t = time.process_time()
        o = outputs(sp.ready, resolutions[b], now)
        for p, st in zip(sp.ready, o.stitched):  # what the old worker did per record (_stitched_record)
            OutRecord("s", st["customer_id"].encode(), orjson.dumps(st), p.raw.timestamp_ms or None,
                      ce_headers("dev.journeys.stitched_event.v1", st["event_id"], st["occurred_at"]))
        for m in o.merges:  # and _merge_record
            OutRecord("m", m["survivor"].encode(), orjson.dumps(m), None, ce_headers(
                "dev.journeys.identity_merge.v1", m["record_id"], format_ms(m["recorded_at_ms"])))
        to += time.process_time() - t
    t_prep.append(tp)
    t_out.append(to)
def decode_all():
    for v in values:
        decode(v, {{}}, now, policy)
print(best(decode_all), min(t_prep), min(t_out))
"""


def best(step: Callable[[], object], repeat: int) -> float:
    """The least CPU time of ``repeat`` runs: the machine is shared, and noise only ever adds time."""
    times = []
    for _ in range(repeat):
        t = time.process_time()
        step()
        times.append(time.process_time() - t)
    return min(times)


def measure(n: int, customers: int, now: int, repeat: int) -> tuple[float, float, float]:
    values = list(events(n, customers, now - 7_200_000))
    raws = [bare_record(v) for v in values]
    policy, hasher, graph = DecodePolicy(), IdentifierHasher(b"k", "GB"), IdentityGraph(parse_limits(""))
    topics = OutTopics("stitched-events", "identity-merges")
    # Pass 0 warms the identifier cache (recurring identifiers are the steady state) and resolves every
    # batch once; then the bench's own heap (records, graph, resolutions) is frozen out of the garbage
    # collector's way, as a worker has none of it (its graph is in Redis).
    resolutions = []
    for s in range(0, n, BATCH):
        split = prepare(raws[s : s + BATCH], hasher, now, policy)
        resolutions.append(
            [graph.resolve(p.event_id, p.occurred_ms, [i.key for i in p.idents], p.mint) for p in split.ready]
        )
    gc.collect()
    gc.freeze()

    def decode_all() -> None:  # results dropped at once: decode's own cost (prepare keeps a batch alive)
        for v in values:
            decode(v, {}, now, policy)

    t_dec = best(decode_all, repeat)
    t_prep, t_out = [], []
    for _ in range(repeat):
        tp = to = 0.0
        for b, s in enumerate(range(0, n, BATCH)):  # worker order: outputs reads what prepare just made
            t = time.process_time()
            split = prepare(raws[s : s + BATCH], hasher, now, policy)
            tp += time.process_time() - t
            t = time.process_time()
            outputs(split.ready, resolutions[b], now, topics)
            to += time.process_time() - t
        t_prep.append(tp)
        t_out.append(to)
    gc.unfreeze()
    return t_dec, min(t_prep), min(t_out)


def measure_old(rev: str, n: int, customers: int, now: int, repeat: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "services", "bench", "schemas"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        code = OLD.format(n=n, now=now, customers=customers, batch=BATCH, repeat=repeat)
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp, check=True, capture_output=True, text=True
        )
    t_dec, t_prep, t_out = (float(x) for x in out.stdout.split())
    return t_dec, t_prep, t_out


def report(label: str, n: int, t_dec: float, t_prep: float, t_out: float) -> None:
    us = 1e6 / n
    print(
        f"{label:>6}: decode {t_dec * us:5.2f} us | prepare {t_prep * us:5.2f} us | "
        f"outputs {t_out * us:5.2f} us | prepare+outputs {(t_prep + t_out) * us:5.2f} us/event "
        f"= {n / (t_prep + t_out):,.0f} events/CPU-s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per step; the least CPU time counts")
    ap.add_argument("--old", metavar="REV", help="also measure the code of this git revision")
    ap.add_argument(
        "--profile", action="store_true", help="run under pyinstrument (pip install pyinstrument)"
    )
    args = ap.parse_args()
    now = now_ms()
    print(
        f"{args.events} events, {args.customers} customers, batches of {BATCH}, process CPU time per event "
        f"(least of {args.repeat} runs)"
    )
    if args.old:
        report("before", args.events, *measure_old(args.old, args.events, args.customers, now, args.repeat))
    if args.profile:
        from pyinstrument import Profiler

        with Profiler() as prof:
            result = measure(args.events, args.customers, now, args.repeat)
        prof.print()
    else:
        result = measure(args.events, args.customers, now, args.repeat)
    report("after", args.events, *result)


if __name__ == "__main__":
    main()
