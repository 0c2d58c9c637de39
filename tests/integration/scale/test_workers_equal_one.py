"""N workers equal one: 3 stitchers and 3 detectors over 6 partitions, on a single Redis and on a real Redis
Cluster, with both consumer groups rebalanced in the middle of the stream (a worker stopped, one added),
give what one worker gives: every event in its final customer's journey exactly once, no false or missed
merge, precision and recall >= 0.99 per alert type, no alert published twice (issue 11).

JOURNEYS_SCALE_TEST_CUSTOMERS sets the population (400 by default; 1030 is the issue's measurement)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
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
PARTITIONS = 6
CUSTOMERS = os.environ.get("JOURNEYS_SCALE_TEST_CUSTOMERS", "400")


class Workers:
    """`journeys stitcher` / `journeys detector` subprocesses, each with its own metrics port (and so its
    own static group member id) and log."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env, self.folder = env, folder
        self.procs: list[tuple[str, subprocess.Popen[bytes], Any]] = []

    def start(self, command: str) -> int:
        port = free_port()
        name = f"{command}-{len(self.procs)}"
        log = (self.folder / f"{name}.log").open("wb")
        env = {**self.env, f"JOURNEYS_{command.upper()}_METRICS_PORT": str(port)}
        proc = subprocess.Popen(
            [*JOURNEYS, command], env=env, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append((name, proc, log))
        poll(
            lambda: proc.poll() is None and http_ok(f"http://127.0.0.1:{port}/metrics"),
            timeout=90,
            interval=0.25,
            what=f"{name} metrics endpoint\n{self.tail(name)}",
        )
        return len(self.procs) - 1

    def stop(self, index: int) -> None:
        _, proc, log = self.procs[index]
        stop_process(proc, timeout=60)
        log.close()

    def tail(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def close(self) -> None:
        for _, proc, log in self.procs:
            if proc.poll() is None:
                stop_process(proc, timeout=60)
            log.close()


@pytest.fixture(params=["single", "cluster"])
def redis_url(request: pytest.FixtureRequest, infra: Infra) -> Iterator[str]:
    yield infra.redis_url if request.param == "single" else request.getfixturevalue("redis_cluster")


def test_three_workers_and_a_rebalance_equal_one_worker(
    tmp_path: Path, infra: Infra, topics: Topics, service_env: dict[str, str], redis_url: str
) -> None:
    start = format_ms((now_ms() - 4 * DAY_MS) // 60_000 * 60_000)
    env = {
        **service_env,
        "REDIS_URL": redis_url,
        "JOURNEYS_TIMER_CLOCK": "event",
        "JOURNEYS_LOG_LEVEL": "WARNING",
        "JOURNEYS_TOPIC_PARTITIONS": str(PARTITIONS),
    }
    pop = tmp_path / "pop.jsonl"
    done = subprocess.run(
        [
            *JOURNEYS,
            "simulate",
            "--customers",
            CUSTOMERS,
            "--seed",
            "11",
            "--start",
            start,
            "--span",
            "3d",
            "--out",
            str(pop),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    truth = orjson.loads((tmp_path / "pop.truth.json").read_bytes())
    events = truth["counts"]["events"]

    workers = Workers(env, tmp_path)
    try:
        stitchers = [workers.start("stitcher") for _ in range(3)]
        detectors = [workers.start("detector") for _ in range(3)]
        replay = subprocess.Popen(
            [*JOURNEYS, "replay", str(pop), "--rate", "150"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # Midway: one stitcher and one detector leave, one of each joins (both groups rebalance).
        poll(
            lambda: collect.count_topic(infra.bootstrap_servers, topics.stitched_events) >= events // 2,
            timeout=120,
            interval=0.5,
            what="half of the events stitched",
        )
        workers.stop(stitchers[0])
        workers.stop(detectors[0])
        workers.start("stitcher")
        workers.start("detector")
        assert replay.wait(timeout=180) == 0, replay.stderr.read() if replay.stderr else ""
        poll(
            lambda: collect.count_topic(infra.bootstrap_servers, topics.stitched_events) >= events,
            timeout=120,
            interval=0.5,
            what=f"{events} stitched events",
        )
        done = subprocess.run(
            [
                *JOURNEYS,
                "evaluate",
                "--truth",
                str(tmp_path / "pop.truth.json"),
                "--population",
                str(pop),
                "--json",
                "--idle",
                "5",
                "--min-precision",
                "0.99",
                "--min-recall",
                "0.99",
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
    finally:
        workers.close()
    report = orjson.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    (tmp_path / "report.json").write_text(done.stdout)  # kept with the workers' logs for a failure's reader
    assert done.returncode == 0, (
        report.get("failures"),
        {t: (v["missed"][:5], v["unexpected"][:5]) for t, v in report.get("types", {}).items()},
        done.stderr[-2000:],
    )
    stitching = report["stitching"]
    assert stitching["false_merges"] == stitching["missed_merges"] == 0, stitching
    assert stitching["seen"] == stitching["in_journey_store"] == events, stitching
    assert report["duplicate_alerts"] == 0
    for kind, score in report["types"].items():
        assert score["expected"] > 0, kind
        assert score["precision"] >= 0.99 and score["recall"] >= 0.99, (kind, score)
