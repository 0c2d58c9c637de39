"""Cost of the pure hot path per event (decode + validate + identifiers + stitched records), no I/O.

    .venv/bin/python -m bench.stitcher.core_bench [--events 100000] [--profile]
"""

from __future__ import annotations

import argparse
import time

import orjson

from bench.stitcher.events import events
from services.common.timeutil import now_ms
from services.stitcher.core.batch import Raw, outputs, prepare
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.identity import IdentityGraph
from services.stitcher.core.stitch import IdentifierHasher
from services.stitcher.settings import parse_limits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--profile", action="store_true",
                    help="run under pyinstrument (pip install pyinstrument)")
    args = ap.parse_args()
    now = now_ms()
    raws = [Raw(v, None, {}) for v in events(args.events, args.customers, now - 7_200_000)]
    hasher, graph, policy = IdentifierHasher(b"k", "GB"), IdentityGraph(parse_limits("")), DecodePolicy()

    def run() -> tuple[float, float]:
        # Timed: what the worker runs in Python. Not timed: the in-memory graph (Redis runs that part).
        t_prep = t_out = 0.0
        for start in range(0, len(raws), 1000):
            t0 = time.perf_counter()
            split = prepare(raws[start:start + 1000], hasher, now, policy)
            t_prep += time.perf_counter() - t0
            res = [graph.resolve(p.event["event_id"], p.occurred_ms, [i.key for i in p.idents], p.mint)
                   for p in split.ready]
            t1 = time.perf_counter()
            out = outputs(split.ready, res, now)
            for st in out.stitched:
                orjson.dumps(st)
            t_out += time.perf_counter() - t1
        return t_prep, t_out

    if args.profile:
        from pyinstrument import Profiler

        with Profiler() as prof:
            t_prep, t_out = run()
        prof.print()
    else:
        t_prep, t_out = run()
    n = len(raws)
    print(f"{n} events: prepare {n / t_prep:,.0f}/s, outputs+encode {n / t_out:,.0f}/s, "
          f"together {n / (t_prep + t_out):,.0f}/s ({(t_prep + t_out) / n * 1e6:.1f} us/event)")


if __name__ == "__main__":
    main()
