"""`journeys up --supervise`: a SIGKILLed service is back and healthy within a deadline, restarts back off and
are counted, every listener is on loopback, and `down` leaves no process of the stack behind."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import free_port, poll, run_journeys

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
BACK_WITHIN_S = 60.0  # restart delay + interpreter start + the worker joining its group and serving /metrics


@pytest.fixture
def sup_env(service_env: dict[str, str], tmp_path: Path, unique: str) -> Iterator[dict[str, str]]:
    """The shared Kafka and Redis (this test's topics and keys), own state folder, ports and groups."""
    env = dict(service_env)
    env.update(
        {
            "JOURNEYS_STATE_DIR": str(tmp_path / "state"),
            "JOURNEYS_STITCHER_METRICS_PORT": str(free_port()),
            "JOURNEYS_DETECTOR_METRICS_PORT": str(free_port()),
            "JOURNEYS_MAP_METRICS_PORT": str(free_port()),
            "JOURNEYS_API_PORT": str(free_port()),
            "JOURNEYS_STITCHER_GROUP": f"t{unique}-stitcher",
            "JOURNEYS_DETECTOR_GROUP": f"t{unique}-detector",
            "JOURNEYS_MAP_GROUP": f"t{unique}-map",
            "JOURNEYS_RESTART_DELAY": "0.2",
            "JOURNEYS_STACK_TIMEOUT": "90",
        }
    )
    env.pop("JOURNEYS_BIND_HOST", None)
    env.pop("JOURNEYS_API_HOST", None)
    yield env
    journeys(env, "down")  # whatever the test did, never leave its processes behind


def journeys(env: dict[str, str], *args: str) -> Any:
    return run_journeys(env, *args, timeout=180, cwd=str(ROOT))


def status(env: dict[str, str]) -> dict[str, Any]:
    done = journeys(env, "status", "--json")
    return {p["name"]: p for p in orjson.loads(done.stdout)["processes"]}


def listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) that listen on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                found.add(addr)
    return found


def stack_pids(state_dir: str) -> set[int]:
    """Every live process whose environment names this state folder: the supervisor, services, children."""
    mine, needle = set(), f"JOURNEYS_STATE_DIR={state_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if stat[0] != "Z":
                    mine.add(int(entry.name))
        except OSError:
            continue
    return mine


def back_again(env: dict[str, str], name: str, old_pid: int, restarts: int) -> dict[str, Any] | None:
    row = status(env).get(name)
    if row and row["pid"] not in (None, old_pid) and row["healthy"] and row["restarts"] == restarts:
        return row
    return None


def test_a_killed_service_is_restarted_with_backoff_and_down_leaves_nothing(sup_env: dict[str, str]) -> None:
    up = journeys(sup_env, "up", "--supervise")
    assert up.returncode == 0, up.stderr
    rows = status(sup_env)
    assert list(rows) == ["stitcher", "detector", "api", "map", "supervisor"]
    assert all(r["healthy"] and r["restarts"] == 0 for r in rows.values())
    for port in ("JOURNEYS_STITCHER_METRICS_PORT", "JOURNEYS_DETECTOR_METRICS_PORT", "JOURNEYS_API_PORT"):
        assert listening(int(sup_env[port])) == {"0100007F"}  # 127.0.0.1 only, never 0.0.0.0
    seen_pids = {r["pid"] for r in rows.values()}

    timings = []
    for crash in (1, 2):  # twice in a row: the second waits twice as long
        old = status(sup_env)["stitcher"]["pid"]
        os.kill(old, signal.SIGKILL)
        start = time.monotonic()
        row = poll(
            lambda old=old, n=crash: back_again(sup_env, "stitcher", old, n),
            timeout=BACK_WITHIN_S,
            interval=0.2,
            what=f"the stitcher back after kill {crash}",
        )
        timings.append(time.monotonic() - start)
        seen_pids.add(row["pid"])
    old = status(sup_env)["api"]["pid"]
    os.kill(old, signal.SIGKILL)
    seen_pids.add(
        poll(
            lambda: back_again(sup_env, "api", old, 1),
            timeout=BACK_WITHIN_S,
            interval=0.2,
            what="the API back",
        )["pid"]
    )
    log = (Path(sup_env["JOURNEYS_STATE_DIR"]) / "logs" / "supervisor.log").read_text()
    assert re.search(r"stitcher: pid \d+ exited after [\d.]+ s; restart 1 in 0\.2 s", log), log
    assert re.search(r"stitcher: pid \d+ killed by SIGKILL after [\d.]+ s; restart 2 in 0\.4 s", log), log
    assert len(re.findall(r"stitcher: healthy again at \S+, [\d.]+ s after it went down", log)) == 2, log
    assert len(re.findall(r"stitcher: restarted \(pid \d+, restart [12]\)", log)) == 2, log
    print(f"stitcher back and healthy after {timings[0]:.1f} s and {timings[1]:.1f} s")

    live = {r["pid"] for r in status(sup_env).values()}
    assert None not in live and live <= stack_pids(sup_env["JOURNEYS_STATE_DIR"])  # the scan finds them
    down = journeys(sup_env, "down")
    assert down.returncode == 0, down.stderr
    assert "supervisor: stopped" in down.stderr.splitlines()[0]  # first, or it would restart the others
    assert stack_pids(sup_env["JOURNEYS_STATE_DIR"]) == set(), "orphans left behind"
    assert not any(Path(f"/proc/{pid}").exists() and status_of(pid) != "Z" for pid in seen_pids)


def status_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
