"""Fast recovery (issue 10) for the gap detector: a SIGKILLed `journeys detector` restarted under the same
static name (JOURNEYS_INSTANCE_ID; the test gives each start its own metrics port, so the name is set) is
back in its group and committing within seconds, on a live input of stitched events."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import Infra, Topics
from tests.helpers import poll
from tests.integration.gap_detector.harness import Worker, create_topics, detector_env, stitched
from tests.integration.recovery import committed_through, heads, kill, live_input

pytestmark = pytest.mark.integration
T0 = 1_793_599_980_000


def stitched_event(n: int) -> tuple[bytes | None, bytes]:
    cid = f"c_{n % 40 + 1:016x}"
    return cid.encode(), orjson.dumps(stitched(f"s{n}", cid, T0 + n * 1000, "web"))


def test_a_killed_detector_restarted_under_its_name_is_back_within_seconds(
    infra: Infra, topics: Topics, service_env: dict[str, str], key_prefix: str, tmp_path: Path
) -> None:
    boot, topic = infra.bootstrap_servers, topics.stitched_events
    create_topics(infra, topics)
    # The default session (10 s): the restart must not wait it out.
    env = detector_env(service_env, key_prefix, JOURNEYS_INSTANCE_ID=f"detector-{key_prefix}")
    group = env["JOURNEYS_DETECTOR_GROUP"]
    workers: list[Worker] = []
    try:
        with live_input(boot, topic, stitched_event):
            workers.append(Worker(env, tmp_path / "first.log"))
            workers[0].wait_ready()
            poll(
                lambda: committed_through(boot, group, topic, heads(boot, topic)),
                timeout=60,
                interval=0.2,
                what="the first detector committing the live input",
            )
            killed = kill(workers[0].proc)  # mid-stream: the input keeps coming
            marks = heads(boot, topic)
            started = time.monotonic()
            workers.append(Worker(env, tmp_path / "second.log"))
            workers[1].wait_ready()
            ready = time.monotonic()
            poll(
                lambda: committed_through(boot, group, topic, marks),
                timeout=30,
                interval=0.1,
                what="the restarted detector committing past everything queued at the kill",
            )
            done = time.monotonic()
    finally:
        for w in workers:
            w.stop()
    print(
        f"\ndetector restarted under the same name: committing {done - killed:.1f} s after the kill, "
        f"{done - started:.1f} s after the process start ({ready - started:.1f} s of it to start up)"
    )
    assert done - started < 10, "a restarted detector must not wait out the session of its old self"
