"""`journeys demo --no-live`: starts the services, streams, shows alerts, stops what it started."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port

pytestmark = pytest.mark.integration


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_headless_and_cleans_up(tmp_path: Path, service_env: dict[str, str]) -> None:
    # The test's broker and Redis (external to the stack), private state and ports: only the three
    # services are the demo's to start and stop.
    env = {
        **service_env,
        "JOURNEYS_STATE_DIR": str(tmp_path / "state"),
        "JOURNEYS_LOG_LEVEL": "WARNING",
        "JOURNEYS_STITCHER_METRICS_PORT": str(free_port()),
        "JOURNEYS_DETECTOR_METRICS_PORT": str(free_port()),
        "JOURNEYS_MAP_METRICS_PORT": str(free_port()),
        "JOURNEYS_API_PORT": str(free_port()),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli.main",
            "demo",
            "--no-live",
            "--no-setup",
            "--customers",
            "60",
            "--span-days",
            "1",
            "--compression",
            "8640",
            "--duration",
            "40",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    summary = [line for line in out.splitlines() if line.startswith("sent ")][-1]
    assert "alerts: none yet" not in summary, out[-3000:]
    assert f"agent page: http://127.0.0.1:{env['JOURNEYS_API_PORT']}/agent" in out
    assert f"journey map: http://127.0.0.1:{env['JOURNEYS_API_PORT']}/map" in out
    assert "stopped: stitcher, detector, api, map" in out
    ports = [
        int(env[v])
        for v in (
            "JOURNEYS_STITCHER_METRICS_PORT",
            "JOURNEYS_DETECTOR_METRICS_PORT",
            "JOURNEYS_API_PORT",
            "JOURNEYS_MAP_METRICS_PORT",
        )
    ]
    assert not [p for p in ports if _listening(p)], "a service the demo started is still up"
