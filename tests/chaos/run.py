"""One chaos run end to end: private stack, workers, population, replay under faults, drain, read back,
verify, publish. ``run_chaos`` returns the verdict; the test asserts on it."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis

from services.common.keys import Keys
from services.common.timeutil import format_ms, now_ms, parse_rfc3339_ms
from services.simulator import collect
from tests.chaos import readback as rb
from tests.chaos import results, schedule
from tests.chaos.drain import DrainWatch, measure
from tests.chaos.faults import BASE_WORKERS, FaultRunner
from tests.chaos.population import simulate
from tests.chaos.replayer import Replayer
from tests.chaos.stack import PrivateStack, private_settings
from tests.chaos.verify import Outputs, Verdict, event_index, verify
from tests.chaos.workers import WorkerPool, worker_env
from tests.helpers import poll

PREFIX = "chaos"


@dataclass(frozen=True)
class Mode:
    name: str
    customers: int
    replay_s: float
    drain_s: float
    seed: int
    minutes: float  # 0: the short run
    calm: bool = False  # a control run: the same replay and checks, no fault at all

    @property
    def command(self) -> str:
        if not self.minutes:
            return "`.venv/bin/pytest -m chaos` (short mode, part of `make test`)"
        return f"`JOURNEYS_CHAOS_MINUTES={self.minutes:g} .venv/bin/pytest -m chaos`"


def mode_for(minutes: float, seed: int, drain_s: float = 0) -> Mode:
    """Short (CI): 300 customers replayed in 100 s. Long: 75 % of the minutes replaying, then draining."""
    if minutes <= 0:
        return Mode("short", 300, 100.0, drain_s or 150.0, seed, 0)
    drain = drain_s or max(150.0, minutes * 15)
    return Mode("long", max(300, round(60 * minutes)), minutes * 45, drain, seed, minutes)


def _commit() -> str:
    """The commit measured, and whether the services ran with uncommitted changes (a shared checkout)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=results.ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or os.environ.get("JOURNEYS_CHAOS_COMMIT", "?")
    dirty = git("status", "--porcelain", "--", "services", "schemas")
    return f"{head} + uncommitted changes under services/ or schemas/" if dirty else head


def run_chaos(mode: Mode, work: Path) -> tuple[Verdict, str]:
    t_start = time.monotonic()
    sim = simulate(mode.customers, mode.seed)
    records = sim.population.records
    compression = (records[-1].arrival_ms - records[0].arrival_ms) / 1000 / mode.replay_s
    stack = PrivateStack(private_settings(work / "stack"), topic_prefix=PREFIX)
    pool = WorkerPool(worker_env(stack, PREFIX), work)
    drained, drain_note = True, ""
    try:
        stack.start()
        for role, name in BASE_WORKERS.items():
            pool.start(name, role)
        pool.wait_ready(list(BASE_WORKERS.values()))
        intensity = schedule.intensity_for(mode.minutes)
        faults = [] if mode.calm else schedule.plan(mode.seed, mode.replay_s, intensity)
        runner = FaultRunner(faults, stack, pool, mode.seed)
        replayer = Replayer(stack.bootstrap, stack.topic("channel-events"), records, compression)
        runner.start()
        replayer.start()
        replayer.join(timeout=mode.replay_s * 3 + 900)
        runner.join(timeout=mode.replay_s * 3 + 900)
        replay_done = time.monotonic()
        client = redis.Redis.from_url(stack.redis_url)
        watch = DrainWatch(
            lambda: measure(stack.bootstrap, client, PREFIX, stack.topic), lambda: _supervise(runner)
        )
        try:
            poll(watch.check, timeout=mode.drain_s, interval=1.0, what="the pipeline to drain")
        except AssertionError:
            drained = False
            last = watch.last
            drain_note = (
                f"not drained after {mode.drain_s:.0f} s: {last.behind}, by partition {last.partitions}"
                if last
                else f"not drained after {mode.drain_s:.0f} s"
            )
            drain_note += "; members: " + " | ".join(
                rb.group_members(stack.bootstrap, g) for g in (rb.STITCHER_GROUP, rb.DETECTOR_GROUP)
            )
            drain_note += "; live workers: " + ", ".join(
                f"{n} (pid {w.proc.pid}, port {w.port})" for n, w in pool.workers.items() if w.alive()
            )
        drain_s = time.monotonic() - replay_done
        outputs = _read_back(stack, client, runner)
        watermark = _watermark_note(client)
        client.close()
    finally:
        pool.close()
        stack.close()
    events = event_index(sim.truth["customers"], sim.population.events, parse_rfc3339_ms)
    outputs.bad_offsets = replayer.result.bad_offsets
    verdict = verify(sim.truth, events, outputs)
    verdict.examples["CRITICAL log lines"] = _critical(work)
    if not drained:
        verdict.failures.insert(0, drain_note)
    if replayer.result.failed:
        verdict.failures.insert(
            0, f"replay: {len(replayer.result.failed)} record(s) not delivered: {replayer.result.failed[:3]}"
        )
    if runner.log.errors:
        verdict.failures.append(f"faults that could not be carried out: {runner.log.errors}")
    c = runner.log.counts
    figures: dict[str, Any] = {
        "kills (SIGKILL) stitcher / detector": f"{c[schedule.KILL_STITCHER]} / {c[schedule.KILL_DETECTOR]}",
        "broker bounces / Redis bounces": f"{c[schedule.BOUNCE_KAFKA]} / {c[schedule.BOUNCE_REDIS]}",
        "workers added / removed": f"{c[schedule.ADD_STITCHER] + c[schedule.ADD_DETECTOR]} / "
        f"{c[schedule.REMOVE_STITCHER] + c[schedule.REMOVE_DETECTOR]}",
        "workers that exited on their own (restarted)": f"{c['crash_restart']} {pool.exits[:6]}",
        "records replayed (malformed)": f"{replayer.result.sent} ({sim.bad_inputs})",
        **verdict.figures,
        "alerts the replay (event) clock would expect": sim.truth_event_clock_alerts,
        "detector watermark at the end": watermark,
        "ERROR / CRITICAL lines in worker logs": "{} / {}".format(*_log_lines(work)),
        "replay / drain / total seconds": f"{replayer.result.seconds:.0f} / {drain_s:.0f} / "
        f"{time.monotonic() - t_start:.0f}",
    }
    label = f"{mode.name}, control run without faults" if mode.calm else mode.name
    run = {
        "command": mode.command + (" with JOURNEYS_CHAOS_FAULTS=0" if mode.calm else ""),
        "commit": _commit(),
        "mode": label,
        "seed": mode.seed,
        "population": f"{sim.truth['counts']['customers']} customers, {len(records)} records, "
        f"{sim.truth['counts']['events']} events, simulated {format_ms(sim.cfg.start_ms)} "
        f"+ 3 d (ends before now - longest SLA), replayed at x{compression:,.0f} in "
        f"{mode.replay_s:.0f} s",
        "configuration": "default worker settings (timer clock live, default session timeout), "
        "1 stitcher + 1 detector, a 2nd of each for a while; private Kafka + Redis",
        "truth": "simulator oracle with the final watermark at the wall clock (every deadline is past)",
    }
    title = f"Chaos run of {format_ms(now_ms())[:16].replace('T', ' ')} UTC ({label}, seed {mode.seed})"
    text = results.render(
        title, run, figures, verdict.report, runner.log.lines, verdict.examples, verdict.failures
    )
    results.append(results.results_path(), text)
    (work / "chaos-report.md").write_text(text)
    return verdict, text


def _watermark_note(client: Any) -> str:
    """Where the detector's watermark ended, against the wall clock minus the default lateness (5 min)."""
    raw = client.get(Keys(PREFIX).watermark)
    if raw is None:
        return "none in Redis"
    wm = int(float(raw))
    return f"{format_ms(wm)} ({(now_ms() - 300_000 - wm) / 1000:,.0f} s behind now - lateness)"


def _supervise(runner: FaultRunner) -> None:
    runner.supervise()  # keep restarting workers that die while the pipeline drains


def _read_back(stack: PrivateStack, client: Any, runner: FaultRunner) -> Outputs:
    keys = Keys(PREFIX)
    stitched = rb.read_all(stack.bootstrap, stack.topic("stitched-events"))
    alerts = rb.read_all(stack.bootstrap, stack.topic("gap-alerts"))
    dlq = rb.read_all(stack.bootstrap, stack.topic("channel-events-dlq"))
    final = collect.stitched_customers([d for d in (r.doc() for r in stitched) if d], client, keys)
    redis_alerts = {k.decode(): orjson.loads(v) for k, v in client.hgetall(keys.alerts_by_id).items()}
    open_alerts = rb.open_alerts(client, PREFIX)
    named = {str(a.get("customer_id")) for a in redis_alerts.values()} | set(open_alerts)
    return Outputs(
        stitched,
        alerts,
        dlq,
        set(),
        final,
        rb.timelines(client, PREFIX),
        redis_alerts,
        open_alerts,
        collect.resolve_aliases(client, keys, named),
        runner.log.times,
    )


def _critical(work: Path) -> list[str]:
    """The first fatal line of each worker log (e.g. a consumer fenced for good, the process alive)."""
    out = []
    for p in sorted(work.glob("*-[12].log")):
        for line in p.read_bytes().splitlines():
            if b" CRITICAL " in line:
                out.append(f"{p.stem}: {line.decode(errors='replace')[:240]}")
                break
    return out


def _log_lines(work: Path) -> tuple[int, int]:
    lines = [line for p in work.glob("*-[12].log") for line in p.read_bytes().splitlines()]
    return sum(b" ERROR " in ln for ln in lines), sum(b" CRITICAL " in ln for ln in lines)
