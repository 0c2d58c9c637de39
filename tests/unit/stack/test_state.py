from __future__ import annotations

import pytest

from services.stack.procs import Proc
from services.stack.stack import _safe_url
from services.stack.state import StackState

pytestmark = pytest.mark.unit


def test_state_round_trips_through_json() -> None:
    st = StackState(
        "127.0.0.1:39092",
        "redis://127.0.0.1:36379/0",
        "http://127.0.0.1:8088",
        {"kafka": Proc("kafka", 10, 99, "/l/kafka.log"), "api": Proc("api", 11, 100, "/l/api.log")},
        {"api": "http://127.0.0.1:8088/healthz"},
    )
    back = StackState.from_json(st.to_json())
    assert back == st
    assert list(back.procs) == ["kafka", "api"]  # start order is kept: `down` reverses it


def test_redis_password_never_shown() -> None:
    assert _safe_url("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert _safe_url("redis://user:s3cret@host/0") == "redis://user:***@host/0"
    assert _safe_url("redis://host:6379/0") == "redis://host:6379/0"


def test_a_wait_that_times_out_names_what_and_how_long() -> None:
    from services.common.errors import UserError
    from services.stack.procs import wait_until

    with pytest.raises(UserError, match=r"^Kafka broker at x: not ready after 0 s$"):
        wait_until(lambda: False, timeout=0, what="Kafka broker at x")
    with pytest.raises(UserError, match=r"^redis: redis exited$"):
        wait_until(lambda: False, timeout=60, what="redis", abort=lambda: "redis exited")
