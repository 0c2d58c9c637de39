"""A service's log file rotates by size and keeps N files; stdout and stderr follow the current file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
