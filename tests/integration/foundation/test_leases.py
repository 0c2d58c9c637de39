"""Overlapping test sessions share one local stack; the last one out stops what tests started."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.stack import kafka_broker, leases, stack
from services.stack.settings import StackSettings
from tests.helpers import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]

SESSION = """
import sys
from services.stack import leases
from services.stack.settings import StackSettings
settings = StackSettings()
lease = leases.acquire(settings)
print(lease.bootstrap_servers, flush=True)
sys.stdin.readline()  # hold the lease until the test says so
print(",".join(leases.release(settings, lease)), flush=True)
"""


@pytest.fixture
def private_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    env = {
        "JOURNEYS_STATE_DIR": str(tmp_path / "state"),
        "JOURNEYS_KAFKA_PORT": str(free_port()),
        "JOURNEYS_KAFKA_CONTROLLER_PORT": str(free_port()),
        "JOURNEYS_REDIS_PORT": str(free_port()),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield {**os.environ, **env}
    stack.down(StackSettings())


def test_the_last_session_out_stops_what_tests_started(private_env: dict[str, str]) -> None:
    settings = StackSettings()
    other = subprocess.Popen(
        [sys.executable, "-c", SESSION],
        env=private_env,
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert other.stdout is not None and other.stdin is not None
    try:
        assert other.stdout.readline().strip() == settings.bootstrap  # the other session started the stack

        mine = leases.acquire(settings)  # reused, not started again
        assert leases.release(settings, mine) == []  # the other session still holds it
        assert kafka_broker.healthy(settings.bootstrap)

        other.stdin.write("\n")
        other.stdin.flush()
        assert set(other.stdout.readline().strip().split(",")) == {"kafka", "redis"}
        assert other.wait(timeout=60) == 0
    finally:
        other.kill()
    assert not kafka_broker.healthy(settings.bootstrap)
