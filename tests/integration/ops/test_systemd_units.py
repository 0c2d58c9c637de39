"""`systemd-analyze verify` accepts deploy/systemd/ (with ExecStart pointed at this checkout's venv)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    journeys = Path(sys.executable).parent / "journeys"
    for unit in (ROOT / "deploy" / "systemd").glob("journeys*.*"):
        if unit.suffix in (".service", ".target"):
            text = unit.read_text().replace("/opt/journeys/.venv/bin/journeys", str(journeys))
            (tmp_path / unit.name).write_text(text.replace("=journeys\n", "=root\n"))  # User=, Group=
    units = sorted(str(p) for p in tmp_path.iterdir())
    done = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    # It does find a mistake: a misspelt key.
    (tmp_path / "journeys-api.service").write_text(
        (tmp_path / "journeys-api.service").read_text().replace("RestartSec=", "RestartSecs=")
    )
    bad = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    assert "RestartSecs" in bad.stdout + bad.stderr
