"""Sharing the local stack between test sessions that may overlap.

Each session takes a lease (a file named after its pid and process start time). What a session had to
start is recorded as test-owned; it is stopped by whichever session leaves last, so one session never
pulls Kafka from under another, and a stack someone started with `journeys up` is never stopped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from services.stack import kafka_broker, procs, redis_server, state
from services.stack.settings import StackSettings
from services.stack.stack import stop_started_locked, up_locked

OWNED = "test-owned"  # names of the processes test sessions started, one per line


@dataclass(frozen=True)
class Lease:
    bootstrap_servers: str
    redis_url: str
    path: Path


def _lease_dir(settings: StackSettings) -> Path:
    return settings.state_path / "leases"


def acquire(settings: StackSettings) -> Lease:
    """Kafka and Redis for this process: reused when healthy, otherwise started (infra only)."""
    with state.locked(settings.state_path, settings.stack_timeout_s):
        bootstrap, redis_url = settings.bootstrap, settings.redis
        if not (kafka_broker.healthy(bootstrap) and redis_server.healthy(redis_url)):
            result = up_locked(settings, infra_only=True)
            bootstrap, redis_url = result.bootstrap_servers, result.redis_url
            _record_owned(settings, result.started)
        me = os.getpid()
        path = _lease_dir(settings) / f"{me}-{procs.start_ticks(me)}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        return Lease(bootstrap, redis_url, path)


def release(settings: StackSettings, lease: Lease) -> list[str]:
    """Drop the lease; the last session out stops what test sessions started. Returns what it stopped."""
    with state.locked(settings.state_path, settings.stack_timeout_s):
        lease.path.unlink(missing_ok=True)
        if _live_leases(settings):
            return []
        owned_file = settings.state_path / OWNED
        names = owned_file.read_text().split() if owned_file.is_file() else []
        owned_file.unlink(missing_ok=True)
        return stop_started_locked(settings, names)


def _record_owned(settings: StackSettings, names: list[str]) -> None:
    owned_file = settings.state_path / OWNED
    known = owned_file.read_text().split() if owned_file.is_file() else []
    owned_file.write_text("".join(f"{n}\n" for n in dict.fromkeys([*known, *names])))


def _live_leases(settings: StackSettings) -> list[Path]:
    """Leases whose process still runs; those of crashed sessions are removed on the way."""
    live = []
    for path in sorted(_lease_dir(settings).glob("*-*")):
        pid, _, ticks = path.name.partition("-")
        if pid.isdigit() and ticks.isdigit() and procs.start_ticks(int(pid)) == int(ticks):
            live.append(path)
        else:
            path.unlink(missing_ok=True)
    return live
