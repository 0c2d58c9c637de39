"""Targets of the one-command benchmark: every figure with a target is judged, missing ones never 'met'."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import report
from bench.kafka_io import Pace

pytestmark = pytest.mark.unit


def figures(stitcher: Pace, detector: Pace | None = None, **kw: object) -> report.Figures:
    f = report.Figures(
        events=1_000_000,
        customers=100_000,
        partitions=4,
        bare_ck=Pace(1_000_000, 4.0, 3.0),
        bare_aio=Pace(1_000_000, 5.0, 4.0),
        stitcher=stitcher,
        stitcher_redis_us=8.0,
        merges=10.0,
        stitched=1_000_000,
        detector=detector,
    )
    for k, v in kw.items():
        setattr(f, k, v)
    return f


def judged(rows: list[report.Row]) -> dict[str, bool | None]:
    return {f"{r.section}: {r.measure.split(' @')[0]}": r.met for r in rows if r.target}


def test_pace_derives_rate_and_cpu_per_event() -> None:
    p = Pace(50_000, 2.0, 1.0)
    assert (p.rate, p.cpu_us) == (25_000, 20.0)


def test_each_target_is_met_at_its_bound_and_missed_past_it() -> None:
    at_bounds = figures(
        Pace(1_000_000, 40.0, 20.0),
        Pace(30_000, 1.0, 1.0),
        rate=5000,
        journey_ms=(10.0, 49.9),
        switch_ms=(20.0, 99.9),
    )
    assert all(judged(report.rows(at_bounds)).values())
    worse = figures(
        Pace(1_000_000, 40.1, 20.1),
        Pace(29_000, 1.0, 1.0),
        rate=5000,
        stitcher_redis_us=10.1,
        journey_ms=(10.0, 50.0),
        switch_ms=(20.0, 100.0),
    )
    assert not any(judged(report.rows(worse)).values())
    assert len(judged(report.rows(worse))) == 6  # the six targets of issue 9


def test_unmeasured_figures_are_not_met_and_skipped_phases_have_no_rows() -> None:
    f = figures(Pace(1000, 1.0, 1.0), rate=5000, stitcher_redis_us=math.nan)
    rows = report.rows(f)
    assert judged(rows)["stitcher: Redis CPU per event"] is False
    assert judged(rows)["stitcher: worker CPU per event (its CPU / wall)"] is False
    assert judged(rows)["latency: produce -> journey store p50 / p99"] is False
    assert not [r for r in rows if r.section == "detector"]
    assert not [r for r in report.rows(figures(Pace(1000, 1.0, 1.0))) if r.section == "latency"]


def test_append_adds_a_dated_section_with_the_command_and_the_table(tmp_path: Path) -> None:
    path = tmp_path / "results" / "day.md"
    rows = report.rows(figures(Pace(1000, 1.0, 1.0)))
    report.append(path, "python -m bench --events 1000", ["machine: x"], rows, ["a note"])
    report.append(path, "python -m bench --events 2000", ["machine: y"], rows, [])
    text = path.read_text()
    assert text.startswith("# Benchmark results, ")
    assert text.count("## Run of ") == 2 and "`python -m bench --events 2000`" in text
    assert (
        "| stitcher | worker CPU per event (its CPU / wall) | 1,000.0 µs (100% of a core) | <= 20 µs "
        "| NOT MET |"
    ) in text
    assert "- a note" in text
