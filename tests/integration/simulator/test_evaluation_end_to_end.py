"""A small end-to-end evaluation: simulate -> replay -> `journeys stitcher` + `journeys detector` ->
`journeys evaluate` against the ground truth, with the thresholds docs/simulator.md publishes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.common.timeutil import format_ms, now_ms
from services.simulator import collect
from tests.conftest import Infra, Topics
from tests.helpers import free_port, http_ok, poll, stop_process

pytestmark = pytest.mark.integration

JOURNEYS = [sys.executable, "-m", "services.cli.main"]
DAY_MS = 86_400_000
# The merge races that once cost this small run a few alerts (an event of a merged-away customer handled
# by one worker while another handled the survivor) are fixed (issue 11): it holds the published 0.99.
MIN_SCORE = "0.99"


@contextmanager
def _worker(command: str, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (cwd / f"{command}.log").open("wb")
    proc = subprocess.Popen([*JOURNEYS, command], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc)
        log.close()


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def test_pipeline_matches_the_ground_truth(
    tmp_path: Path, infra: Infra, topics: Topics, service_env: dict[str, str], redis_client: Any
) -> None:
    # Simulated time ends a day ago, so the stitcher's future/age checks pass.
    start = format_ms((now_ms() - 4 * DAY_MS) // 60_000 * 60_000)  # whole minutes: the same population
    pop = tmp_path / "pop.jsonl"
    done = subprocess.run(
        [
            *JOURNEYS,
            "simulate",
            "--customers",
            "150",
            "--seed",
            "5",
            "--start",
            start,
            "--span",
            "3d",
            "--out",
            str(pop),
        ],
        env=service_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    truth = orjson.loads((tmp_path / "pop.truth.json").read_bytes())

    stitcher_port, detector_port = free_port(), free_port()
    env = {
        **service_env,
        "JOURNEYS_TIMER_CLOCK": "event",
        "JOURNEYS_LOG_LEVEL": "WARNING",
        "JOURNEYS_STITCHER_METRICS_PORT": str(stitcher_port),
        "JOURNEYS_DETECTOR_METRICS_PORT": str(detector_port),
    }
    with _worker("stitcher", env, tmp_path), _worker("detector", env, tmp_path):
        poll(
            lambda: (
                http_ok(f"http://127.0.0.1:{stitcher_port}/metrics")
                and http_ok(f"http://127.0.0.1:{detector_port}/metrics")
            ),
            timeout=90,
            interval=0.25,
            what="stitcher and detector metrics endpoints",
        )
        done = subprocess.run(
            [*JOURNEYS, "replay", str(pop), "--rate", "100"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        events = truth["counts"]["events"]
        poll(
            lambda: collect.count_topic(infra.bootstrap_servers, topics.stitched_events) >= events,
            timeout=90,
            interval=0.5,
            what=f"{events} stitched events\n{_tail(tmp_path / 'stitcher.log')}",
        )
        done = subprocess.run(
            [
                *JOURNEYS,
                "evaluate",
                "--truth",
                str(tmp_path / "pop.truth.json"),
                "--json",
                "--idle",
                "5",
                "--min-precision",
                MIN_SCORE,
                "--min-recall",
                MIN_SCORE,
                "--max-false-merges",
                "0",
                "--min-accuracy",
                "0.99",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    report = orjson.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    assert done.returncode == 0, (
        report.get("failures"),
        {t: (v["missed"][:5], v["unexpected"][:5]) for t, v in report.get("types", {}).items()},
        done.stderr[-2000:],
        _tail(tmp_path / "detector.log"),
    )
    stitching = report["stitching"]
    assert stitching["false_merges"] == 0 and stitching["seen"] == stitching["in_journey_store"] == events
    for kind, score in report["types"].items():
        assert score["expected"] > 0, kind  # every rule is exercised, not trivially perfect
    # Every malformed record was dead-lettered, nothing else was.
    assert report["dead_letters"] == report["malformed_sent"] == truth["counts"]["malformed"] > 0
