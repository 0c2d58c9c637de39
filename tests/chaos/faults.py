"""Carries out a fault plan (schedule.py) against the private stack and the worker pool, in a thread, while
the replay runs; between faults it restarts any worker that died on its own, as a supervisor would."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.chaos import schedule as s
from tests.chaos.stack import PrivateStack
from tests.chaos.workers import WorkerPool

BASE_WORKERS = {"stitcher": "stitcher-1", "detector": "detector-1"}
EXTRA_WORKERS = {"stitcher": "stitcher-2", "detector": "detector-2"}


@dataclass
class FaultLog:
    counts: Counter[str] = field(default_factory=Counter)
    lines: list[str] = field(default_factory=list)
    times: list[tuple[float, float, str]] = field(default_factory=list)  # (wall start, wall end, kind)
    errors: list[str] = field(default_factory=list)

    def note(self, t0: float, kind: str, text: str, start: float) -> None:
        """``start``: wall time the fault began; the line shows it in seconds after the replay started."""
        self.counts[kind] += 1
        self.times.append((start, time.time(), kind))
        began = time.monotonic() - (time.time() - start)
        self.lines.append(f"{began - t0:6.1f} s  {text}")


class FaultRunner(threading.Thread):
    def __init__(self, faults: list[s.Fault], stack: PrivateStack, pool: WorkerPool, seed: int) -> None:
        super().__init__(name="chaos-faults", daemon=True)
        self.faults, self.stack, self.pool = faults, stack, pool
        self.rng = random.Random(seed)
        self.stop_event = threading.Event()
        self.log = FaultLog()
        self.t0 = time.monotonic()

    def run(self) -> None:
        self.t0 = time.monotonic()
        for fault in self.faults:
            while not self.stop_event.is_set():
                left = self.t0 + fault.at_s - time.monotonic()
                if left <= 0:
                    break
                self.supervise()
                self.stop_event.wait(min(left, 1.0))  # pacing the plan, not synchronising
            if self.stop_event.is_set():
                return
            try:
                self.apply(fault)
            except Exception as exc:  # a fault that could not be carried out is reported, never hidden
                self.log.errors.append(f"{fault.describe()}: {type(exc).__name__}: {exc}")
        self.supervise()

    def supervise(self) -> None:
        for name in self.pool.revive_crashed():
            self.log.note(self.t0, "crash_restart", f"{name} had exited on its own: restarted", time.time())

    def pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0 and not self.stop_event.is_set():
            self.stop_event.wait(min(left, 0.5))  # the victim stays down this long: the fault's duration

    def apply(self, f: s.Fault) -> None:
        start = time.time()
        if f.kind in (s.KILL_STITCHER, s.KILL_DETECTOR):
            role = "stitcher" if f.kind == s.KILL_STITCHER else "detector"
            alive = sorted(n for n, w in self.pool.workers.items() if w.role == role and w.alive())
            if not alive:
                self.log.lines.append(f"{f.describe()}: no live {role} to kill")
                return
            victim = self.rng.choice(alive)
            self.pool.kill(victim)
            self.pause(f.pause_s)
            self.pool.restart(victim)
            self.log.note(self.t0, f.kind, f"SIGKILL {victim}, restarted after {f.pause_s:.1f} s", start)
        elif f.kind == s.BOUNCE_KAFKA:
            self.stack.stop_kafka()
            self.pause(f.pause_s)
            self.stack.start_kafka()
            self.log.note(
                self.t0,
                f.kind,
                f"broker stopped, down {f.pause_s:.1f} s, back after {time.time() - start:.1f} s",
                start,
            )
        elif f.kind == s.BOUNCE_REDIS:
            self.stack.stop_redis()
            self.pause(f.pause_s)
            self.stack.start_redis()
            self.log.note(
                self.t0,
                f.kind,
                f"Redis stopped, down {f.pause_s:.1f} s, back after {time.time() - start:.1f} s",
                start,
            )
        elif f.kind in (s.ADD_STITCHER, s.ADD_DETECTOR):
            role = "stitcher" if f.kind == s.ADD_STITCHER else "detector"
            self.pool.start(EXTRA_WORKERS[role], role)
            self.log.note(self.t0, f.kind, f"{EXTRA_WORKERS[role]} added (2 {role}s)", start)
        elif f.kind in (s.REMOVE_STITCHER, s.REMOVE_DETECTOR):
            role = "stitcher" if f.kind == s.REMOVE_STITCHER else "detector"
            self.pool.remove(EXTRA_WORKERS[role])
            self.log.note(self.t0, f.kind, f"{EXTRA_WORKERS[role]} removed (SIGTERM)", start)
