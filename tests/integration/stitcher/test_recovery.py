"""Fast recovery (issue 10): a SIGKILLed stitcher is back in its group and committing within seconds.

Real `journeys stitcher` processes on a live input (events on every partition, a few every 20 ms):
- killed and restarted under the same static name (same host and metrics port): it takes its partitions
  back at once, without waiting out the session of the member it replaces;
- killed for good while a second worker shares the group: the survivor takes the dead one's partitions
  once the session times out (JOURNEYS_KAFKA_SESSION_TIMEOUT) and commits past everything queued.
Each prints its measured times (bench/results, docs/operations.md "Recovery")."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import AdminClient

from tests.conftest import Infra, Topics
from tests.helpers import free_port, poll
from tests.integration.recovery import PARTITIONS, committed_through, heads, kill, live_input
from tests.integration.stitcher.support import create_topics, event, group_of, stitcher

pytestmark = pytest.mark.integration

SESSION_S = 6  # the broker's smallest allowed session (group.min.session.timeout.ms)


def channel_event(n: int) -> tuple[bytes | None, bytes]:
    return None, orjson.dumps(event(f"s{n}", email=f"u{n % 40}@example.com"))


def members(bootstrap: str, group: str) -> list[int]:
    """How many partitions each member of the group holds now."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return sorted(len(m.assignment.topic_partitions) for m in desc.members)


def test_a_killed_worker_restarted_under_its_name_is_back_within_seconds(
    infra: Infra, topics: Topics, service_env: dict[str, str], tmp_path: Path
) -> None:
    boot, topic = infra.bootstrap_servers, topics.channel_events
    create_topics(boot, topics, PARTITIONS)
    group = group_of(service_env)
    # The default session (10 s): the restart must not wait it out. Same metrics port: same static name.
    same = {"JOURNEYS_STITCHER_METRICS_PORT": str(free_port()), "JOURNEYS_KAFKA_SESSION_TIMEOUT": "10s"}
    with live_input(boot, topic, channel_event), ExitStack() as stack:
        first = stack.enter_context(stitcher(service_env, tmp_path / "first.log", **same))
        poll(
            lambda: committed_through(boot, group, topic, heads(boot, topic)),
            timeout=60,
            interval=0.2,
            what="the first worker committing the live input",
        )
        killed = kill(first)  # mid-stream: the input keeps coming
        marks = heads(boot, topic)
        started = time.monotonic()
        stack.enter_context(stitcher(service_env, tmp_path / "second.log", **same))
        ready = time.monotonic()
        poll(
            lambda: committed_through(boot, group, topic, marks),
            timeout=30,
            interval=0.1,
            what="the restarted worker committing past everything queued at the kill",
        )
        done = time.monotonic()
        print(
            f"\nrestart under the same name: committing {done - killed:.1f} s after the kill, "
            f"{done - started:.1f} s after the process start ({ready - started:.1f} s of it to start up)"
        )
        assert done - started < 10, "a restarted worker must not wait out the session of its old self"


def test_a_worker_killed_for_good_hands_its_partitions_to_the_survivor_within_the_session(
    infra: Infra, topics: Topics, service_env: dict[str, str], tmp_path: Path
) -> None:
    boot, topic = infra.bootstrap_servers, topics.channel_events
    create_topics(boot, topics, PARTITIONS)
    group = group_of(service_env)
    session = {"JOURNEYS_KAFKA_SESSION_TIMEOUT": f"{SESSION_S}s"}
    with live_input(boot, topic, channel_event), ExitStack() as stack:
        doomed = stack.enter_context(stitcher(service_env, tmp_path / "doomed.log", **session))
        stack.enter_context(stitcher(service_env, tmp_path / "survivor.log", **session))
        poll(
            lambda: members(boot, group) == [2, 2],
            timeout=60,
            interval=0.2,
            what="both workers in the group with two partitions each",
        )
        poll(
            lambda: committed_through(boot, group, topic, heads(boot, topic)),
            timeout=60,
            interval=0.2,
            what="both workers committing the live input",
        )
        killed = kill(doomed)
        marks = heads(boot, topic)
        poll(
            lambda: committed_through(boot, group, topic, marks),
            timeout=SESSION_S + 30,
            interval=0.1,
            what="the survivor committing past everything queued at the kill",
        )
        done = time.monotonic()
        assert members(boot, group) == [PARTITIONS]
        print(
            f"\nsurvivor took over: committing every partition {done - killed:.1f} s after the kill "
            f"(session timeout {SESSION_S} s)"
        )
        assert done - killed < SESSION_S + 5
