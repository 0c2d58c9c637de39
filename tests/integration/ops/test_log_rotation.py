"""A service's log file rotates by size and keeps N files; stdout and stderr follow the current file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port, run_journeys

pytestmark = pytest.mark.integration

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
    env = {**os.environ, "JOURNEYS_LOG_FILE": str(log), "JOURNEYS_LOG_MAX_BYTES": "20000",
           "JOURNEYS_LOG_BACKUPS": "3"}
    done = subprocess.run([sys.executable, "-c", WRITER], env=env, capture_output=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[3])
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


def test_the_local_brokers_log_rotates_too(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")}
    env.update({"JOURNEYS_STATE_DIR": str(tmp_path / "state"), "JOURNEYS_KAFKA_PORT": str(free_port()),
                "JOURNEYS_KAFKA_CONTROLLER_PORT": str(free_port()), "JOURNEYS_REDIS_PORT": str(free_port()),
                "JOURNEYS_LOG_MAX_BYTES": "20000", "JOURNEYS_LOG_BACKUPS": "2",
                "JOURNEYS_STACK_TIMEOUT": "90"})
    root = str(Path(__file__).resolve().parents[3])
    try:
        up = run_journeys(env, "up", "--infra-only", timeout=180, cwd=root)
        assert up.returncode == 0, up.stderr
    finally:
        assert run_journeys(env, "down", timeout=180, cwd=root).returncode == 0
    logs = tmp_path / "state" / "logs"
    kafka = sorted(p.name for p in logs.iterdir() if p.name.startswith("kafka.log"))
    assert kafka[:2] == ["kafka.log", "kafka.log.1"] and len(kafka) <= 3  # a start writes > 20 kB of INFO
    # A file rolls after the record that crosses the size (the broker's config dump is one ~15 kB record).
    assert all((logs / name).stat().st_size < 20000 + 32768 for name in kafka)
    assert "started (kafka.server.KafkaRaftServer)" in "".join((logs / n).read_text() for n in kafka)
