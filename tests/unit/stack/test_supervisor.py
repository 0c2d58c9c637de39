from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.stack import apps, state
from services.stack.procs import Proc, start_ticks
from services.stack.settings import StackSettings
from services.stack.state import StackState
from services.stack.supervisor import Backoff, Supervisor

pytestmark = pytest.mark.unit


def test_restarts_back_off_exponentially_up_to_a_cap() -> None:
    b = Backoff(first_s=1.0, max_s=10.0, reset_after_s=60.0)
    assert [b.next_delay(uptime_s=2.0) for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_a_run_that_lasted_resets_the_backoff() -> None:
    b = Backoff(first_s=0.5, max_s=60.0, reset_after_s=30.0)
    assert [b.next_delay(1.0), b.next_delay(1.0), b.next_delay(1.0)] == [0.5, 1.0, 2.0]
    assert b.next_delay(uptime_s=45.0) == 0.5
    assert b.next_delay(uptime_s=1.0) == 1.0


def test_restart_counts_survive_stack_json() -> None:
    st = StackState("k", "r", "a", {"stitcher": Proc("stitcher", 1, 2, "/l")}, restarts={"stitcher": 3})
    assert StackState.from_json(st.to_json()).restarts == {"stitcher": 3}


def test_the_age_of_a_process_comes_from_its_start_time() -> None:
    from services.stack.supervisor import age_s

    ticks = start_ticks(os.getpid())
    assert ticks is not None and 0.0 <= age_s(ticks) < 3600  # this test process started moments ago
    assert age_s(0) > age_s(ticks)  # a process started at boot is older


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Supervisor, list[str], Path]:
    """A supervisor over a state folder whose stitcher is recorded dead; apps.start only records the call."""
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOURNEYS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("JOURNEYS_RESTART_DELAY", "1")
    started: list[str] = []

    def start(app: apps.App, log: Path, env: dict[str, str]) -> Proc:
        started.append(app.name)
        return Proc(app.name, os.getpid(), start_ticks(os.getpid()) or 0, str(log))  # "alive": this process

    monkeypatch.setattr(apps, "start", start)
    dead = Proc("stitcher", os.getpid(), -1, "/l")  # the start time does not match: gone
    state.save(tmp_path, StackState("k:1", "redis://r/0", "http://a", {"stitcher": dead}))
    return Supervisor(StackSettings()), started, tmp_path


def test_a_dead_service_is_restarted_after_its_delay_and_counted(
    watched: tuple[Supervisor, list[str], Path],
) -> None:
    sup, started, folder = watched
    sup.tick(100.0)
    assert started == []  # seen gone: restart due in 1 s
    sup.tick(100.5)
    assert started == []
    sup.tick(101.1)
    assert started == ["stitcher"]
    after = state.load(folder)
    assert after is not None and after.restarts == {"stitcher": 1} and after.procs["stitcher"].alive()
    sup.tick(102.0)
    assert started == ["stitcher"]  # running now: nothing more to do


def test_a_service_stopped_on_purpose_is_not_restarted(watched: tuple[Supervisor, list[str], Path]) -> None:
    sup, started, folder = watched
    sup.tick(100.0)
    st = state.load(folder)
    assert st is not None
    state.forget(folder, st, "stitcher")  # what `down` / `stop_started` do
    state.save(folder, st)
    sup.tick(105.0)
    assert started == []
