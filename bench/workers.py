"""The service processes under test and the CPU they and Redis burn.

A worker is the real `journeys stitcher` / `journeys detector` command in its own process, configured
only by the run's topics, key prefix, consumer groups and ports: the default configuration is what is
measured. CPU is read from /proc (user + system of every thread of the process) and from Redis'
``INFO cpu``, so a shared, busy machine is accounted for: CPU per event does not depend on who else runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import redis

from bench.promtext import Sample, read_metrics, total

ROOT = Path(__file__).resolve().parents[1]
# Settings a run must not inherit from the caller's shell: the workers run in their default configuration,
# plus only what the run names (and --worker-env, reported with the results).
_INHERITED_PREFIX = "JOURNEYS_"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads (Linux /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu_s(client: redis.Redis) -> float:
    """used_cpu_user + used_cpu_sys of the redis-server (all its threads), from INFO cpu."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def clean_env(settings: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIX)}
    env.update(settings)
    return env


class Worker:
    """One `journeys <role>` process; its /metrics port is the one in ``port_var`` of ``env``."""

    def __init__(
        self, role: str, env: Mapping[str, str], port_var: str, log: Path, code: Path = ROOT
    ) -> None:
        self.role, self.log, self.port = role, log, int(env[port_var])
        # ``code``: the tree whose services run (another checkout measures older code with this benchmark).
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli.main", role],
                env={**env, "PYTHONPATH": str(code)},
                cwd=code,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise SystemExit(f"{self.role} exited with {self.proc.returncode}; {self.tail()}")

    def tail(self) -> str:
        return f"its log {self.log} ends:\n{self.log.read_text(errors='replace')[-3000:]}"

    def metrics(self) -> dict[Sample, float]:
        return read_metrics(self.port)

    def total(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        return total(self.metrics(), name, labels)

    def up(self) -> bool:
        self.check()
        try:
            self.metrics()
        except OSError:
            return False
        return True

    def cpu_s(self) -> float:
        return process_cpu_s(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_until(
    done: Callable[[], bool],
    what: str,
    timeout_s: float,
    every_s: float = 0.1,
    tick: Callable[[], None] | None = None,
) -> None:
    """Poll ``done`` until true; SystemExit naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if tick is not None:
            tick()
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(every_s)  # polling a condition with a deadline, not synchronising
