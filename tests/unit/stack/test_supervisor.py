from __future__ import annotations

import pytest

from services.stack.procs import Proc
from services.stack.state import StackState
from services.stack.supervisor import Backoff

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
    import os

    from services.stack.procs import start_ticks
    from services.stack.supervisor import age_s

    ticks = start_ticks(os.getpid())
    assert ticks is not None and 0.0 <= age_s(ticks) < 3600  # this test process started moments ago
    assert age_s(0) > age_s(ticks)  # a process started at boot is older
