"""Client commands find the stack the way `journeys up` does (they used to hit the default ports)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.stack import state
from services.stack.endpoints import client_settings
from services.stack.procs import Proc, start_ticks
from services.stack.settings import StackSettings
from services.stack.state import StackState

pytestmark = pytest.mark.unit
OTHER_KAFKA, OTHER_REDIS = "127.0.0.1:42001", "redis://127.0.0.1:42002/0"


@pytest.fixture
def stack_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOURNEYS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("JOURNEYS_KAFKA_PORT", "41001")
    monkeypatch.setenv("JOURNEYS_REDIS_PORT", "41002")
    return tmp_path


def test_the_stacks_ports_are_used_when_no_endpoint_is_given(stack_env: Path) -> None:
    s = client_settings()
    assert (s.kafka_bootstrap_servers, s.redis_url) == ("127.0.0.1:41001", "redis://127.0.0.1:41002/0")


def test_a_running_stack_of_the_state_folder_wins_over_the_port_defaults(stack_env: Path) -> None:
    me = Proc("kafka", os.getpid(), start_ticks(os.getpid()) or 0, "/l")
    state.save(stack_env, StackState(OTHER_KAFKA, OTHER_REDIS, "http://x", {"kafka": me}))
    s = client_settings()
    assert (s.kafka_bootstrap_servers, s.redis_url) == (OTHER_KAFKA, OTHER_REDIS)


def test_a_dead_stack_of_the_state_folder_is_ignored(stack_env: Path) -> None:
    gone = Proc("kafka", os.getpid(), -1, "/l")  # wrong start time: not this process
    state.save(stack_env, StackState(OTHER_KAFKA, OTHER_REDIS, "http://x", {"kafka": gone}))
    assert client_settings().kafka_bootstrap_servers == "127.0.0.1:41001"


def test_explicit_endpoints_win(stack_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("REDIS_URL", "redis://r:6379/3")
    s = client_settings()
    assert (s.kafka_bootstrap_servers, s.redis_url) == ("k:9092", "redis://r:6379/3")


def test_replay_sends_to_the_resolved_endpoints(stack_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.cli.main import main
    from services.simulator import run
    from services.simulator.streaming import ReadReport

    seen: list[str] = []

    def replay_file(path: Path, settings: StackSettings, topic: str | None, rate: float) -> ReadReport:
        seen.append(settings.kafka_bootstrap_servers)  # the real one would connect there
        return ReadReport()

    monkeypatch.setattr(run, "replay_file", replay_file)
    assert main(["replay", str(stack_env / "f.jsonl")]) == 0
    assert seen == ["127.0.0.1:41001"]
