"""`journeys supervise` (started by `journeys up --supervise`): restart a crashed service with backoff.

It watches the services recorded in stack.json (by their pid and start time, so also those `up` started
before it) and restarts one that is gone after 1, 2, 4 ... s (JOURNEYS_RESTART_*), the delay reset once a
run lasted JOURNEYS_RESTART_RESET_AFTER. Each restart takes the state folder's lock, starts the process and
records it (new pid, restart count) before letting go, so `down` always finds what runs. `down` stops the
supervisor first; SIGTERM makes it exit and leave the services to `down`. The production route is systemd
(deploy/systemd/), which does the same with Restart=on-failure.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from services.common.errors import UserError
from services.common.logs import KEEP
from services.stack import apps, state
from services.stack.settings import StackSettings

log = logging.getLogger("journeys.supervisor")
NAME = "supervisor"
TICK_S = 0.2


@dataclass
class Backoff:
    """Delay before the next restart: ``first_s`` doubled per crash in a row, at most ``max_s``; a run
    that lasted ``reset_after_s`` starts the count again."""

    first_s: float
    max_s: float
    reset_after_s: float
    crashes: int = 0

    def next_delay(self, uptime_s: float) -> float:
        if uptime_s >= self.reset_after_s:
            self.crashes = 0
        delay = min(self.first_s * 2**self.crashes, self.max_s)
        self.crashes += 1
        return delay


@dataclass
class Watched:
    app: apps.App
    backoff: Backoff
    started: float = field(default_factory=time.monotonic)
    pid: int | None = None  # the run `started` belongs to
    exited_at: float | None = None  # when we saw it gone
    due: float | None = None  # when to restart it
    awaiting_health: bool = False


class Supervisor:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.stopping = False
        self.exit_codes: dict[int, str] = {}  # our own children, reaped: pid -> how it ended
        self.watched = {
            a.name: Watched(
                a, Backoff(settings.restart_delay_s, settings.restart_max_delay_s, settings.restart_reset_s)
            )
            for a in apps.apps(settings)
        }

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        log.info("supervising %s (pid %d)", ", ".join(self.watched), os.getpid())
        while not self.stopping:
            self._reap()
            self.tick(time.monotonic())
            time.sleep(TICK_S)
        log.info("supervisor: stopping; the services are left to `journeys down`")
        return 0

    def _reap(self) -> None:
        """Collect the services we restarted (our children) when they exit, and how they ended."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if os.WIFSIGNALED(status):
                self.exit_codes[pid] = f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
            else:
                self.exit_codes[pid] = f"exit code {os.WEXITSTATUS(status)}"

    def tick(self, now: float) -> None:
        st = state.load(self.settings.state_path)
        if st is None:
            return
        for name, w in self.watched.items():
            proc = st.procs.get(name)
            if proc is None:  # not started by `up` (skipped) or stopped on purpose
                w.due = None
                continue
            if proc.alive():
                if w.pid != proc.pid:  # a run we did not start: `up` before us, or meanwhile
                    if w.due is not None:
                        log.info("%s: running again (pid %d), started by someone else", name, proc.pid)
                    w.due, w.pid, w.started = None, proc.pid, now - age_s(proc.start_ticks)
                self._check_health(w, st.health.get(name, ""), now)
                continue
            if w.due is None:
                how = self.exit_codes.pop(proc.pid, "exited")
                delay = w.backoff.next_delay(now - w.started)
                w.exited_at, w.due = now, now + delay
                log.warning(
                    "%s: pid %d %s after %.1f s; restart %d in %.1f s",
                    name,
                    proc.pid,
                    how,
                    now - w.started,
                    st.restarts.get(name, 0) + 1,
                    delay,
                    extra=KEEP,
                )
            elif now >= w.due:
                self._restart(w, now)

    def _check_health(self, w: Watched, url: str, now: float) -> None:
        if w.awaiting_health and apps.http_healthy(url, timeout_s=0.5):
            w.awaiting_health = False
            since = now - w.exited_at if w.exited_at is not None else 0.0
            log.info("%s: healthy again at %s, %.1f s after it went down", w.app.name, url, since)

    def _restart(self, w: Watched, now: float) -> None:
        name = w.app.name
        with ExitStack() as held:
            try:
                held.enter_context(state.locked(self.settings.state_path, 1.0))
            except UserError:
                return  # `up` or `down` at work: look again at the next tick (`down` stops us first)
            st = state.load(self.settings.state_path)
            proc = st.procs.get(name) if st is not None else None
            if st is None or proc is None or proc.alive():
                w.due = None  # stopped on purpose, or already back: the next tick sees which
                return
            env = apps.app_env(self.settings, st.bootstrap_servers, st.redis_url)
            try:
                new = apps.start(w.app, self.settings.state_path / "logs" / f"{name}.log", env)
            except UserError as exc:  # its port taken by someone else, the process failing at once
                delay = w.backoff.next_delay(0.0)
                w.due = now + delay
                log.warning("%s: not restarted (%s); next try in %.1f s", name, exc, delay, extra=KEEP)
                return
            st.procs[name] = new
            st.restarts[name] = st.restarts.get(name, 0) + 1
            state.save(self.settings.state_path, st)
        w.due, w.pid, w.started, w.awaiting_health = None, new.pid, time.monotonic(), True
        log.info("%s: restarted (pid %d, restart %d)", name, new.pid, st.restarts[name])


def age_s(start_ticks: int) -> float:
    """Seconds since a process started (its start time in clock ticks since boot, from /proc)."""
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return 0.0
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


def command() -> list[str]:
    """`journeys supervise` under our interpreter, as the services are started."""
    return [sys.executable, "-m", "services.cli.main", "supervise"]
