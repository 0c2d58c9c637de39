"""Start, identify and stop background processes; wait for conditions with a deadline.

A pid alone is not an identity (pids are recycled), so every process we start is recorded as
(pid, start time in clock ticks from /proc/<pid>/stat); ``stop`` only signals a process whose
start time still matches. Each process leads its own session, so its children go with it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from services.common.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Proc:
    name: str
    pid: int
    start_ticks: int
    log: str

    def alive(self) -> bool:
        return start_ticks(self.pid) == self.start_ticks

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "pid": self.pid, "start_ticks": self.start_ticks, "log": self.log}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Proc:
        return cls(str(data["name"]), int(str(data["pid"])), int(str(data["start_ticks"])), str(data["log"]))


def start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` (clock ticks since boot), or None when no such live process exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited already
        return None
    return int(fields[19])


def spawn(
    name: str, cmd: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Proc:
    """Start ``cmd`` in the background, detached from our terminal, output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        try:
            popen = subprocess.Popen(  # commands are built by us, never from user text
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise UserError(f"cannot start {name}: {cmd[0]} not found (run `journeys setup`)") from exc
    ticks = start_ticks(popen.pid)
    if ticks is None:
        popen.wait(timeout=5)
        raise UserError(f"{name} exited at once (exit code {popen.returncode}): {tail(log)}")
    # Leave the child running after we exit; the pid file (not this Popen) is its handle now.
    popen.returncode = 0
    return Proc(name, popen.pid, ticks, str(log))


def stop(proc: Proc, *, timeout: float = 20.0) -> bool:
    """SIGTERM the process group of ``proc``, SIGKILL after ``timeout`` s. False if it was gone already."""
    if not proc.alive():
        return False
    _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(proc.pid)
        if not proc.alive():
            return True
        time.sleep(0.05)
    if proc.alive():
        _signal_group(proc.pid, signal.SIGKILL)
        wait_until(lambda: not proc.alive() or _reap(proc.pid), timeout=5, what=f"{proc.name} to die")
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


def _reap(pid: int) -> bool:
    """Collect ``pid`` if it is our own exited child (else it would linger as a zombie)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free(port: int, what: str, variable: str) -> None:
    if not port_free(port):
        raise UserError(f"port {port} ({what}) is in use by another process; stop it or set {variable}")


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(log: Path | str, lines: int = 5) -> str:
    """The last lines of a log, joined into one line for an error message."""
    try:
        text = Path(log).read_text(errors="replace")
    except OSError:
        return "(no log)"
    last = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
    return " | ".join(last) or "(log empty)"


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    abort: Callable[[], str | None] | None = None,
    log: str | Path | None = None,
) -> T:
    """Poll ``check`` until truthy; UserError after ``timeout`` s (with the tail of ``log``) or as soon
    as ``abort`` returns a reason."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if abort is not None and (reason := abort()):
            raise UserError(f"{what}: {reason}")
        if time.monotonic() >= deadline:
            hint = f"; last log lines: {tail(log)}" if log is not None else ""
            raise UserError(f"{what}: not ready after {timeout:.0f} s{hint}")
        time.sleep(interval)
