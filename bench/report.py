"""The figures of one run, their targets (issue 9), the printed table and the dated results section."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.table import Table

from bench.kafka_io import Pace

# Targets of issue 9 (stitched events on the 2-core box with Kafka and Redis on it).
STITCHER_RATE = 25_000  # events/s end to end over 1M events
STITCHER_CPU_US = 20.0  # >= 50,000 events per worker CPU-second
STITCHER_REDIS_US = 10.0  # Redis CPU per stitched event
DETECTOR_CPU_US = 1e6 / 30_000  # >= 30,000 events per worker CPU-second
JOURNEY_P99_MS = 50.0  # produce -> visible in the journey store, at 5k events/s
SWITCH_P99_MS = 100.0  # produce -> channel-switch alert, at 5k events/s


@dataclass(frozen=True, slots=True)
class Row:
    section: str
    measure: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target


@dataclass
class Figures:
    events: int
    customers: int
    partitions: int
    bare_ck: Pace
    bare_aio: Pace | None
    stitcher: Pace
    stitcher_redis_us: float
    merges: float
    stitched: int
    detector: Pace | None = None
    detector_redis_us: float = math.nan
    rate: int = 0
    achieved_rate: float = math.nan
    journey_ms: tuple[float, float] = (math.nan, math.nan)
    alert_ms: tuple[float, float] = (math.nan, math.nan)
    switch_ms: tuple[float, float] = (math.nan, math.nan)
    switches: int = 0
    stitcher_stages: str = ""
    detector_stages: str = ""
    redis_background: float = math.nan  # Redis CPU s/s used by others just before the stitcher ran
    notes: list[str] = field(default_factory=list)


def _n(x: float, unit: str = "") -> str:
    return "n/a" if math.isnan(x) else f"{x:,.0f}{unit}"


def _us(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:,.1f} µs"


def _ms(pair: tuple[float, float]) -> str:
    def one(x: float) -> str:
        return "n/a" if math.isnan(x) else "off the scale" if math.isinf(x) else f"{x:,.1f}"

    return " / ".join(map(one, pair)) + " ms"


def _pct(a: float, b: float) -> str:
    return "n/a" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.1%}"


def _vs(worker: Pace, ck: Pace, aio: Pace | None) -> tuple[str, str]:
    """(events/s of the worker over the bare loops', CPU/event of the bare loops over the worker's)."""
    rate, cpu = _pct(worker.rate, ck.rate), _pct(ck.cpu_us, worker.cpu_us)
    if aio is not None:
        rate, cpu = f"{rate}; {_pct(worker.rate, aio.rate)}", f"{cpu}; {_pct(aio.cpu_us, worker.cpu_us)}"
    return rate, cpu


def _busy(p: Pace) -> str:
    """The worker's CPU seconds over the wall seconds: below 100 % it waited (Redis, Kafka, a busy box)."""
    return f"{p.cpu_s / max(p.wall_s, 1e-9):.0%} of a core"


def _le(x: float, bound: float) -> bool:
    return not math.isnan(x) and x <= bound


def _lt(x: float, bound: float) -> bool:
    return not math.isnan(x) and x < bound


def rows(f: Figures) -> list[Row]:
    ck, aio, st, det = f.bare_ck, f.bare_aio, f.stitcher, f.detector
    loops = "confluent-kafka; aiokafka" if aio is not None else "confluent-kafka"
    out = [Row("bare loop", "confluent-kafka + orjson", f"{_n(ck.rate)} ev/s, {_us(ck.cpu_us)}/ev")]
    if aio is not None:
        out += [
            Row("bare loop", "aiokafka + orjson", f"{_n(aio.rate)} ev/s, {_us(aio.cpu_us)}/ev"),
            Row(
                "bare loop",
                "confluent-kafka vs aiokafka (events/s; CPU/ev)",
                f"{_pct(ck.rate, aio.rate)}; {_pct(ck.cpu_us, aio.cpu_us)}",
            ),
        ]
    out.append(
        Row(
            "redis",
            "CPU of other clients just before the stitcher ran",
            "n/a" if math.isnan(f.redis_background) else f"{f.redis_background:.1%} of a core",
        )
    )
    st_rate, st_cpu = _vs(st, ck, aio)
    out += [
        Row(
            "stitcher",
            f"end to end, {st.events:,} events",
            f"{_n(st.rate)} ev/s",
            f">= {STITCHER_RATE:,}/s (1M events)",
            st.rate >= STITCHER_RATE,
        ),
        Row(
            "stitcher",
            "worker CPU per event (its CPU / wall)",
            f"{_us(st.cpu_us)} ({_busy(st)})",
            f"<= {STITCHER_CPU_US:.0f} µs",
            _le(st.cpu_us, STITCHER_CPU_US),
        ),
        Row(
            "stitcher",
            "Redis CPU per event",
            _us(f.stitcher_redis_us),
            f"<= {STITCHER_REDIS_US:.0f} µs",
            _le(f.stitcher_redis_us, STITCHER_REDIS_US),
        ),
        Row("stitcher", f"events/s vs bare loop ({loops})", st_rate),
        Row("stitcher", f"CPU/ev of bare loop / worker ({loops})", st_cpu),
        Row("stitcher", "merges; stitched events out", f"{_n(f.merges)}; {f.stitched:,}"),
        Row("stitcher", "handler wall time per event, by stage", f.stitcher_stages),
    ]
    if det is not None:
        det_rate, det_cpu = _vs(det, ck, aio)
        out += [
            Row("detector", f"over the stitched events, {det.events:,}", f"{_n(det.rate)} ev/s"),
            Row(
                "detector",
                "worker CPU per event (its CPU / wall)",
                f"{_us(det.cpu_us)} ({_busy(det)})",
                f"<= {DETECTOR_CPU_US:.1f} µs",
                _le(det.cpu_us, DETECTOR_CPU_US),
            ),
            Row("detector", "Redis CPU per event", _us(f.detector_redis_us)),
            Row("detector", "handler wall time per event, by stage", f.detector_stages),
            Row("detector", f"events/s vs bare loop ({loops})", det_rate),
            Row("detector", f"CPU/ev of bare loop / worker ({loops})", det_cpu),
        ]
    if f.rate:
        at = f"@ {f.rate:,}/s"
        out += [
            Row("latency", f"steady rate achieved {at}", f"{_n(f.achieved_rate)} ev/s"),
            Row(
                "latency",
                f"produce -> journey store p50 / p99 {at}",
                _ms(f.journey_ms),
                f"p99 < {JOURNEY_P99_MS:.0f} ms",
                _lt(f.journey_ms[1], JOURNEY_P99_MS),
            ),
            Row(
                "latency",
                f"produce -> channel-switch alert p50 / p99 {at}",
                _ms(f.switch_ms),
                f"p99 < {SWITCH_P99_MS:.0f} ms",
                _lt(f.switch_ms[1], SWITCH_P99_MS),
            ),
            Row("latency", "channel-switch alerts timed", f"{f.switches:,}"),
            Row("latency", f"detector: stitched record -> alert step p50 / p99 {at}", _ms(f.alert_ms)),
        ]
    return out


def verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "NOT MET")


def table(title: str, rs: list[Row]) -> Table:
    t = Table(title=title)
    for col in ("", "measure", "value", "target", ""):
        t.add_column(col)
    for r in rs:
        mark = verdict(r.met)
        t.add_row(r.section, r.measure, r.value, r.target, f"[green]{mark}" if r.met else f"[red]{mark}")
    return t


def markdown(rs: list[Row]) -> str:
    lines = ["| | measure | value | target | |", "|---|---|---|---|---|"]
    lines += [f"| {r.section} | {r.measure} | {r.value} | {r.target} | {verdict(r.met)} |" for r in rs]
    return "\n".join(lines)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return f"{os.cpu_count()} CPUs ({model}), {mem_kb / 1024**2:.1f} GiB RAM, Linux {platform.release()}"


def code_version(root: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{head} (with uncommitted changes)" if git("status", "--porcelain", "--", "services") else head


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def append(path: Path, command: str, header: list[str], rs: list[Row], notes: list[str]) -> None:
    """Append one dated section (creates the file with a title when missing)."""
    now = datetime.now(UTC)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# Benchmark results, {now:%Y-%m-%d}\n")
    body = [f"\n## Run of {now:%Y-%m-%d %H:%M} UTC: `{command}`\n"]
    body += [f"- {line}" for line in header]
    body += ["", markdown(rs), ""]
    body += [f"- {note}" for note in notes]
    with path.open("a") as out:
        out.write("\n".join(body).rstrip() + "\n")
