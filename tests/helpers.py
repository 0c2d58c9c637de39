"""Test helpers: wait for a condition with a deadline instead of sleeping; run service processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def poll(
    fn: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Call ``fn`` until it returns a truthy value, or fail after ``timeout`` seconds saying ``what``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)  # pacing between polls, not synchronisation
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")


def free_port() -> int:
    """A loopback port nobody listens on right now, for a private service in a test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str) -> bool:
    """True when ``url`` answers 200 within a second (a service's health or metrics endpoint)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM a service process and wait; SIGKILL it if it has not exited within ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_journeys(
    env: dict[str, str], *args: str, timeout: float = 120.0, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`journeys <args>` in a subprocess with this interpreter; output captured as text, never raises."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
