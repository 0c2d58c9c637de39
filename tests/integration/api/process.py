"""Run ``journeys api`` as a real subprocess on a free loopback port (browser and ops tests)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import free_port, http_ok, poll

JOURNEYS = str(Path(sys.executable).with_name("journeys"))


@contextmanager
def running_api(env: dict[str, str], token: str) -> Iterator[str]:
    """Start the API; yield its base URL; stop it with SIGTERM and check it exits cleanly."""
    port = free_port()
    proc = subprocess.Popen(
        [JOURNEYS, "api"],
        env={**env, "JOURNEYS_API_PORT": str(port), "JOURNEYS_API_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        poll(
            lambda: proc.poll() is not None or http_ok(f"{base}/healthz"), timeout=30, what="the API to start"
        )
        if proc.poll() is not None:
            raise AssertionError(f"journeys api exited: {proc.communicate()[0].decode()[-2000:]}")
        yield base
    finally:
        if proc.poll() is None:
            proc.terminate()
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, f"journeys api did not exit cleanly on SIGTERM: {out.decode()[-2000:]}"
