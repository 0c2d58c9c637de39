"""Stitcher and gap-detector workers as real processes (`journeys stitcher|detector`) on the private
stack: started, SIGKILLed, restarted, added and removed by name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.stack import PrivateStack
from tests.helpers import free_port, http_ok, poll, stop_process

ROLES = ("stitcher", "detector")
METRICS_PORT_VAR = {
    "stitcher": "JOURNEYS_STITCHER_METRICS_PORT",
    "detector": "JOURNEYS_DETECTOR_METRICS_PORT",
}
# What the workers must not inherit from whoever runs the tests: endpoints and topics of another stack,
# and a timer clock other than the default one (the suite runs the default, wall-clock configuration).
DROPPED = ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "JOURNEYS_TIMER_CLOCK", "JOURNEYS_KEY_PREFIX")


def worker_env(stack: PrivateStack, key_prefix: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in (base if base is not None else os.environ).items()
        if k not in DROPPED and not k.startswith("JOURNEYS_TOPIC_") and not k.endswith("_GROUP")
    }
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
            "REDIS_URL": stack.redis_url,
            "JOURNEYS_KEY_PREFIX": key_prefix,
            "JOURNEYS_LOG_LEVEL": env.get("JOURNEYS_LOG_LEVEL", "WARNING"),
            "JOURNEYS_TOPIC_CHANNEL_EVENTS": stack.topic("channel-events"),
            "JOURNEYS_TOPIC_DLQ": stack.topic("channel-events-dlq"),
            "JOURNEYS_TOPIC_STITCHED_EVENTS": stack.topic("stitched-events"),
            "JOURNEYS_TOPIC_IDENTITY_MERGES": stack.topic("identity-merges"),
            "JOURNEYS_TOPIC_GAP_ALERTS": stack.topic("gap-alerts"),
        }
    )
    return env


@dataclass
class Worker:
    name: str  # e.g. stitcher-1
    role: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class WorkerPool:
    env: dict[str, str]
    log_dir: Path
    workers: dict[str, Worker] = field(default_factory=dict)
    exits: list[str] = field(default_factory=list)  # workers found dead without our doing (name: status)

    def start(self, name: str, role: str) -> Worker:
        # A restart keeps the worker's metrics port, as a supervisor restarting the same configuration
        # would; the default static group member name (host-port) stays the same, so it rejoins at once.
        old = self.workers.get(name)
        port = old.port if old is not None else free_port()
        log = self.log_dir / f"{name}.log"
        env = {**self.env, METRICS_PORT_VAR[role]: str(port)}
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli.main", role],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(name, role, proc, port, log)
        self.workers[name] = worker
        return worker

    def wait_ready(self, names: list[str], timeout: float = 120.0) -> None:
        def ready() -> bool:
            for n in names:
                w = self.workers[n]
                assert w.alive(), f"{n} exited {w.proc.returncode}: {tail(w.log)}"
            return all(http_ok(f"http://127.0.0.1:{self.workers[n].port}/metrics") for n in names)

        poll(ready, timeout=timeout, interval=0.25, what=f"workers {names} to serve /metrics")

    def kill(self, name: str) -> bool:
        """SIGKILL (no goodbye to the group, no flush); False when it was not running."""
        w = self.workers.get(name)
        if w is None or not w.alive():
            return False
        w.proc.send_signal(signal.SIGKILL)
        w.proc.wait(timeout=30)
        return True

    def restart(self, name: str) -> Worker:
        old = self.workers[name]
        return self.start(name, old.role)

    def remove(self, name: str) -> None:
        """A clean scale-in: SIGTERM, the worker leaves its group."""
        w = self.workers.pop(name, None)
        if w is not None:
            stop_process(w.proc, timeout=60)

    def revive_crashed(self) -> list[str]:
        """Restart workers that died on their own (e.g. crash-looping on a broker outage), as a supervisor
        would; each restart is counted by the caller."""
        revived = []
        for name, w in list(self.workers.items()):
            if not w.alive():
                self.exits.append(f"{name}: exit {w.proc.returncode}")
                self.restart(name)
                revived.append(name)
        return revived

    def close(self) -> None:
        for name in list(self.workers):
            self.remove(name)


def tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""
