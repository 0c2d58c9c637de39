"""A service's log file rotates by size and keeps N files; stdout and stderr follow the current file."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, run_journeys

pytestmark = pytest.mark.integration
ROOT = str(Path(__file__).resolve().parents[3])

WRITER = """
import logging, sys
from services.common import logs
logs.configure(to_file=True)
log = logging.getLogger("services.test")
for i in range(3000):
    log.info("line %05d %s", i, "x" * 60)
print("printed after the rolls")
sys.stderr.write("stderr after the rolls\\n")
raise SystemExit("exit message")
"""


def test_the_log_rotates_by_size_keeps_n_files_and_takes_stdout_along(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "stitcher.log"
    env = {
        **os.environ,
        "JOURNEYS_LOG_FILE": str(log),
        "JOURNEYS_LOG_MAX_BYTES": "20000",
        "JOURNEYS_LOG_BACKUPS": "3",
    }
    done = subprocess.run(
        [sys.executable, "-c", WRITER],
        env=env,
        capture_output=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 1, done.stderr
    files = sorted(p.name for p in log.parent.iterdir())
    assert files == ["stitcher.log", "stitcher.log.1", "stitcher.log.2", "stitcher.log.3"]
    assert all(p.stat().st_size <= 20000 + 200 for p in log.parent.iterdir())
    current = log.read_text()
    assert "line 02999" in current
    # What bypasses logging (print, a write to stderr, the exit message) is in the current file, not a
    # renamed one, and not on the terminal.
    assert "printed after the rolls" in current and "stderr after the rolls" in current
    assert "exit message" in current
    assert done.stdout == b"" and done.stderr == b""


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """Kafka and Redis on their own ports and state folder (no KAFKA_BOOTSTRAP_SERVERS / REDIS_URL), with
    small log files."""
    state = tmp_path_factory.mktemp("private") / "state"
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")}
    env.update(
        {
            "JOURNEYS_STATE_DIR": str(state),
            "JOURNEYS_KAFKA_PORT": str(free_port()),
            "JOURNEYS_KAFKA_CONTROLLER_PORT": str(free_port()),
            "JOURNEYS_REDIS_PORT": str(free_port()),
            "JOURNEYS_LOG_MAX_BYTES": "20000",
            "JOURNEYS_LOG_BACKUPS": "2",
            "JOURNEYS_STACK_TIMEOUT": "90",
        }
    )
    try:
        up = run_journeys(env, "up", "--infra-only", timeout=180, cwd=ROOT)
        assert up.returncode == 0, up.stderr
        yield env, state
    finally:
        assert run_journeys(env, "down", timeout=180, cwd=ROOT).returncode == 0


def test_the_local_brokers_log_rotates_too(private_stack: tuple[dict[str, str], Path]) -> None:
    logs = private_stack[1] / "logs"
    kafka = sorted(p.name for p in logs.iterdir() if p.name.startswith("kafka.log"))
    assert kafka[:2] == ["kafka.log", "kafka.log.1"] and len(kafka) <= 3  # a start writes > 20 kB of INFO
    # A file rolls after the record that crosses the size (the broker's config dump is one ~15 kB record).
    assert all((logs / name).stat().st_size < 20000 + 32768 for name in kafka)
    assert "started (kafka.server.KafkaRaftServer)" in "".join((logs / n).read_text() for n in kafka)


def test_replay_sends_to_the_stack_of_its_ports_not_the_default_one(
    private_stack: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    from services.simulator.collect import count_topic

    env = {**private_stack[0], "JOURNEYS_TOPIC_CHANNEL_EVENTS": f"replay-{uuid.uuid4().hex[:8]}"}
    records = tmp_path / "r.jsonl"
    records.write_text("".join(f'{{"key": "k{i}", "raw": "x{i}"}}\n' for i in range(3)))
    done = run_journeys(env, "replay", str(records), timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    bootstrap = f"127.0.0.1:{env['JOURNEYS_KAFKA_PORT']}"  # only this private broker has the topic
    assert count_topic(bootstrap, env["JOURNEYS_TOPIC_CHANNEL_EVENTS"]) == 3
