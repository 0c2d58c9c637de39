"""`journeys up --redis-cluster`: a 3-master Redis Cluster in the local stack, with the usual status and down.

Kafka is the shared test broker (external, this test's own topics), so only the cluster is started here, on
its own ports and state folder: the shared stack is never touched."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.cluster as synccluster

from services.common.redis_conn import connect_sync
from services.stack import procs
from services.stack.redis_cluster import BUS_OFFSET, NODES
from tests.conftest import Infra, Topics
from tests.helpers import run_journeys

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def consecutive_free_ports(count: int) -> int:
    """A first port such that it, the next ``count - 1`` and all their cluster bus ports are free."""
    for _ in range(1000):
        base = random.randint(20000, 30000 - count)
        ports = [base + i for i in range(count)]
        if all(procs.port_free(p) and procs.port_free(p + BUS_OFFSET) for p in ports):
            return base
    raise AssertionError("no free ports")


@pytest.fixture
def cluster_env(tmp_path: Path, infra: Infra, topics: Topics) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "JOURNEYS_REDIS_CLUSTER")}
    env.update(topics.env())
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
            "JOURNEYS_STATE_DIR": str(tmp_path / "state"),
            "JOURNEYS_REDIS_PORT": str(consecutive_free_ports(NODES)),
            "JOURNEYS_TOPIC_PARTITIONS": "1",
            "JOURNEYS_STACK_TIMEOUT": "60",
        }
    )
    yield env
    run_journeys(env, "down", cwd=str(ROOT))  # never leave a node behind, whatever the test did


def status(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = run_journeys(env, "status", "--json", cwd=str(ROOT))
    return done.returncode, orjson.loads(done.stdout)


def test_up_status_down_with_a_cluster(cluster_env: dict[str, str]) -> None:
    base = int(cluster_env["JOURNEYS_REDIS_PORT"])
    ports = [base + i for i in range(NODES)]
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)

    up = run_journeys(cluster_env, "up", "--infra-only", "--redis-cluster", timeout=180, cwd=str(ROOT))
    assert up.returncode == 0, up.stderr
    rc, report = status(cluster_env)
    assert rc == 0, report
    assert report["redis"]["url"] == url and report["redis"]["healthy"] is True
    nodes = {p["name"]: p for p in report["processes"]}
    assert sorted(nodes) == [f"redis-{p}" for p in ports]
    assert all(p["healthy"] and Path(p["log"]).is_file() for p in nodes.values())

    client = connect_sync(url)
    assert isinstance(client, synccluster.RedisCluster)
    try:
        assert sorted(n.port for n in client.get_primaries()) == ports
        client.set("{stack-test}:k", "v", ex=60)
        assert client.get("{stack-test}:k") == b"v"
    finally:
        client.close()

    # A second `up` (the flag given through the environment this time) leaves the running nodes alone.
    again = run_journeys(
        {**cluster_env, "JOURNEYS_REDIS_CLUSTER": "1"}, "up", "--infra-only", timeout=180, cwd=str(ROOT)
    )
    assert again.returncode == 0 and again.stderr.count("already running") == NODES, again.stderr
    assert {p["name"]: p["pid"] for p in status(cluster_env)[1]["processes"]} == {
        n: p["pid"] for n, p in nodes.items()
    }

    stopped = run_journeys(cluster_env, "down", cwd=str(ROOT))
    assert stopped.returncode == 0, stopped.stderr
    rc, after = status(cluster_env)
    assert rc == 1 and after["processes"] == [] and after["redis"]["healthy"] is False
    assert all(procs.start_ticks(p["pid"]) is None for p in nodes.values())

    # Restarted on the same folders, the nodes rejoin their cluster (nodes.conf) and keep the data (AOF).
    up = run_journeys(cluster_env, "up", "--infra-only", "--redis-cluster", timeout=180, cwd=str(ROOT))
    assert up.returncode == 0, up.stderr
    assert status(cluster_env)[0] == 0
    client = connect_sync(url)
    try:
        assert client.get("{stack-test}:k") == b"v"
    finally:
        client.close()
