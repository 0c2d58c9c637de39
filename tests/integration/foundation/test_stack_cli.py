"""`journeys up --infra-only`, `status --json` and `down` on their own ports and state folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.stack import procs
from services.stack.procs import Proc
from services.stack.settings import StackSettings
from services.stack.stack import down
from tests.helpers import free_port, run_journeys

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment for a private stack: own ports, own state folder, no external Kafka/Redis."""
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")}
    env.update(
        {
            "JOURNEYS_STATE_DIR": str(tmp_path / "state"),
            "JOURNEYS_KAFKA_PORT": str(free_port()),
            "JOURNEYS_KAFKA_CONTROLLER_PORT": str(free_port()),
            "JOURNEYS_REDIS_PORT": str(free_port()),
            "JOURNEYS_TOPIC_PARTITIONS": "2",
            "JOURNEYS_STACK_TIMEOUT": "60",
        }
    )
    yield env
    journeys(env, "down")  # never leave a broker behind, whatever the test did


def journeys(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_journeys(env, *args, timeout=180, cwd=str(ROOT))


def status(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = journeys(env, "status", "--json")
    return done.returncode, orjson.loads(done.stdout)


def test_up_status_down(stack_env: dict[str, str]) -> None:
    import redis
    from kafka import KafkaAdminClient

    up = journeys(stack_env, "up", "--infra-only")
    assert up.returncode == 0, up.stderr
    rc, report = status(stack_env)
    bootstrap = f"127.0.0.1:{stack_env['JOURNEYS_KAFKA_PORT']}"
    redis_url = f"redis://127.0.0.1:{stack_env['JOURNEYS_REDIS_PORT']}/0"
    assert rc == 0
    assert report["kafka"] == {"bootstrap_servers": bootstrap, "pid": report["kafka"]["pid"], "healthy": True}
    assert report["redis"]["url"] == redis_url and report["redis"]["healthy"] is True
    assert report["api"]["base_url"] == "http://127.0.0.1:8088"
    assert [p["name"] for p in report["processes"]] == ["kafka", "redis"]
    assert all(p["healthy"] and Path(p["log"]).is_file() for p in report["processes"])

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    described = admin.describe_topics(["channel-events", "gap-alerts"])
    admin.close()
    assert [len(t["partitions"]) for t in described] == [2, 2]
    client = redis.Redis.from_url(redis_url)
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    client.close()

    again = journeys(stack_env, "up", "--infra-only")
    assert again.returncode == 0 and "already running" in again.stderr
    assert status(stack_env)[1]["kafka"]["pid"] == report["kafka"]["pid"]
    assert_tests_never_stop_it(stack_env)

    stopped = journeys(stack_env, "down")
    assert stopped.returncode == 0, stopped.stderr
    rc, after = status(stack_env)
    assert rc == 1 and after["kafka"]["healthy"] is False and after["processes"] == []
    assert procs.start_ticks(report["kafka"]["pid"]) is None
    assert procs.start_ticks(report["redis"]["pid"]) is None


def assert_tests_never_stop_it(env: dict[str, str]) -> None:
    """A test session that finds this stack running shares it and leaves it running."""
    code = (
        "from services.stack import leases; from services.stack.settings import StackSettings; "
        "s = StackSettings(); print(leases.release(s, leases.acquire(s)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "[]", done.stderr
    assert status(env)[0] == 0


def test_up_runs_the_services_and_down_stops_them(stack_env: dict[str, str]) -> None:
    ports = {
        "JOURNEYS_STITCHER_METRICS_PORT": free_port(),
        "JOURNEYS_DETECTOR_METRICS_PORT": free_port(),
        "JOURNEYS_API_PORT": free_port(),
    }
    stack_env.update({k: str(v) for k, v in ports.items()})
    up = journeys(stack_env, "up")
    assert up.returncode == 0, up.stderr
    rc, report = status(stack_env)
    by_name = {p["name"]: p for p in report["processes"]}
    built = sorted(set(by_name) - {"kafka", "redis"})
    assert rc == 0, report
    assert built, "no service command is registered yet"
    assert all(by_name[name]["healthy"] for name in built)
    assert report["api"]["base_url"] == f"http://127.0.0.1:{ports['JOURNEYS_API_PORT']}"

    assert journeys(stack_env, "down").returncode == 0
    assert all(procs.start_ticks(p["pid"]) is None for p in report["processes"])
    assert all(procs.port_free(port) for port in ports.values())


def test_port_in_use_fails_in_one_line_and_stops_what_it_started(stack_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(stack_env["JOURNEYS_REDIS_PORT"])))
        squatter.listen()
        up = journeys(stack_env, "up", "--infra-only")
    assert up.returncode == 2
    error = up.stderr.strip().splitlines()[-1]
    assert error == (
        f"journeys: error: port {stack_env['JOURNEYS_REDIS_PORT']} (Redis) is in use by another "
        "process; stop it or set JOURNEYS_REDIS_PORT"
    )
    # Kafka had started before Redis failed: `up` stopped it again.
    assert "kafka: stopped" in up.stderr
    assert status(stack_env)[1]["processes"] == []


def test_down_leaves_a_recycled_pid_alone(tmp_path: Path) -> None:
    """A recorded pid whose start time differs is another process now: never signal it."""
    from services.stack import state

    settings = StackSettings(JOURNEYS_STATE_DIR=str(tmp_path))  # type: ignore[call-arg]
    me = os.getpid()
    impostor = Proc("redis", me, (procs.start_ticks(me) or 0) + 1, str(tmp_path / "redis.log"))
    recorded = state.StackState("127.0.0.1:1", "redis://127.0.0.1:1/0", "http://x", {"redis": impostor})
    state.save(tmp_path, recorded)
    assert down(settings) == []
    assert procs.start_ticks(me) is not None
    assert not state.state_file(tmp_path).exists()


def test_a_start_past_its_timeout_says_so_with_the_log_and_cleans_up(stack_env: dict[str, str]) -> None:
    stack_env["JOURNEYS_STACK_TIMEOUT"] = "0.3"  # shorter than any JVM start
    up = journeys(stack_env, "up", "--infra-only")
    assert up.returncode == 2
    error = up.stderr.strip().splitlines()[-1]
    assert error.startswith("journeys: error: ") and ": not ready after 0 s; last log lines: " in error
    assert status(stack_env)[1]["processes"] == []


def test_a_service_port_in_use_is_refused_before_the_service_starts(stack_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        stack_env["JOURNEYS_STITCHER_METRICS_PORT"] = str(squatter.getsockname()[1])
        up = journeys(stack_env, "up")
    assert up.returncode == 2
    assert (
        up.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"journeys: error: port {stack_env['JOURNEYS_STITCHER_METRICS_PORT']} (stitcher) is in use"
        )
    )
    assert status(stack_env)[1]["processes"] == []
