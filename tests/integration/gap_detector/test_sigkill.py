"""A real detector process SIGKILLed between its Redis writes and its offset commit: the next worker
handles the batch again and Redis ends exactly as after one clean pass (no timer, alert or open alert
twice); on the topic an alert id repeats only because the crash forced the resend."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from services.common.keys import Keys
from services.gap_detector.core.alerts import alert_id
from tests.conftest import Infra, Topics
from tests.helpers import poll, stop_process
from tests.integration.gap_detector.harness import (
    ROOT,
    AlertReader,
    Worker,
    create_topics,
    detector_env,
    produce,
    stitched,
)

pytestmark = pytest.mark.integration
T0 = 1_793_599_980_000
PAY = {"type": "purchase", "stage": "payment"}
SLA_MS = 3_600_000  # the bundled definitions' SLA of purchase/payment


def committed(infra: Infra, group: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": infra.bootstrap_servers, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)
        return sum(tp.offset for tp in tps if tp.offset >= 0)
    finally:
        c.close()


def test_a_detector_killed_before_its_commit_leaves_no_duplicate_in_redis(
    infra: Infra,
    topics: Topics,
    service_env: dict[str, str],
    key_prefix: str,
    redis_client: Any,
    tmp_path: Path,
) -> None:
    create_topics(infra, topics)
    env = detector_env(service_env, key_prefix)
    group = env["JOURNEYS_DETECTOR_GROUP"]
    cids = [f"c_{i + 1:016x}" for i in range(40)]
    # Each customer: a web contact, then a phone call on the same intent (a channel switch), on a journey
    # stage with an SLA (a stall timer).
    docs = [stitched(f"w{i}", c, T0, "web", intent="billing", journey=PAY) for i, c in enumerate(cids)]
    docs += [
        stitched(f"p{i}", c, T0 + 60_000, "phone", intent="billing", journey=PAY) for i, c in enumerate(cids)
    ]
    produce(infra, topics.stitched_events, docs)
    keys = Keys(key_prefix)
    want_alerts = {alert_id("channel_switch", c, f"p{i}") for i, c in enumerate(cids)}

    log = tmp_path / "killed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.gap_detector.kill_before_commit"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        assert proc.wait(timeout=90) == -signal.SIGKILL, log.read_text()[-3000:]
    finally:
        stop_process(proc)
    assert committed(infra, group, topics.stitched_events) == 0
    first_alerts = {a.decode() for a in redis_client.hkeys(keys.alerts_by_id)}
    assert first_alerts and first_alerts <= want_alerts  # the killed batch's writes are in Redis

    reader = AlertReader(infra, topics.gap_alerts)
    worker = Worker(env, tmp_path / "second.log")
    try:
        worker.wait_ready()
        poll(
            lambda: committed(infra, group, topics.stitched_events) == len(docs),
            timeout=120,
            what="every offset committed by the second worker",
        )
        poll(lambda: {a["alert_id"] for a in reader.read()} >= want_alerts, what="every alert on the topic")
    finally:
        worker.stop()
    # Redis: exactly one clean pass.
    assert {a.decode() for a in redis_client.hkeys(keys.alerts_by_id)} == want_alerts
    assert redis_client.zcard(keys.recent_alerts) == len(cids)
    timers = redis_client.zrange(keys.timers, 0, -1, withscores=True)
    assert sorted(timers) == sorted((f"{c}|purchase".encode(), float(T0 + 60_000 + SLA_MS)) for c in cids)
    for i, c in enumerate(cids):
        assert redis_client.hkeys(keys.open_alerts(c)) == [alert_id("channel_switch", c, f"p{i}").encode()]
    # The topic: an alert id twice only where the crash forced a resend of what the killed worker sent.
    counts = Counter(a["alert_id"] for a in reader.read())
    reader.reader.close()
    assert {a for a, n in counts.items() if n > 1} <= first_alerts
    assert all(n <= 2 for n in counts.values())
