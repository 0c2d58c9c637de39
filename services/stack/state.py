"""stack.json: what `journeys up` started and where, so `down` and `status` act on exactly that."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from services.common.errors import UserError
from services.stack.procs import Proc


@dataclass
class StackState:
    bootstrap_servers: str
    redis_url: str
    api_base_url: str
    procs: dict[str, Proc] = field(default_factory=dict)
    health: dict[str, str] = field(default_factory=dict)  # process name -> health URL (services only)
    restarts: dict[str, int] = field(default_factory=dict)  # process name -> restarts by the supervisor

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "kafka": {"bootstrap_servers": self.bootstrap_servers},
            "redis": {"url": self.redis_url},
            "api": {"base_url": self.api_base_url},
            "processes": [
                {**p.to_json(), "health_url": self.health.get(n), "restarts": self.restarts.get(n, 0)}
                for n, p in self.procs.items()
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackState:
        state = cls(data["kafka"]["bootstrap_servers"], data["redis"]["url"], data["api"]["base_url"])
        for item in data.get("processes", []):
            proc = Proc.from_json(item)
            state.procs[proc.name] = proc
            if item.get("health_url"):
                state.health[proc.name] = item["health_url"]
            if item.get("restarts"):
                state.restarts[proc.name] = int(item["restarts"])
        return state


def state_file(state_dir: Path) -> Path:
    return state_dir / "stack.json"


def load(state_dir: Path) -> StackState | None:
    path = state_file(state_dir)
    try:
        return StackState.from_json(orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path} is damaged ({exc}); stop its processes by hand and delete it") from exc


def save(state_dir: Path, state: StackState) -> None:
    path = state_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_bytes(orjson.dumps(state.to_json(), option=orjson.OPT_INDENT_2))
    tmp.replace(path)
    # One pid file per process as well, for humans and shell scripts.
    for name, proc in state.procs.items():
        (path.parent / f"{name}.pid").write_text(f"{proc.pid}\n")


def forget(state_dir: Path, state: StackState, name: str) -> None:
    state.procs.pop(name, None)
    state.health.pop(name, None)
    state.restarts.pop(name, None)
    (state_dir / f"{name}.pid").unlink(missing_ok=True)


@contextmanager
def locked(state_dir: Path, timeout_s: float) -> Iterator[None]:
    """Serialise `up`/`down` of one state folder (two test sessions may start together)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "stack.lock", "w") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise UserError(
                        f"another `journeys up/down` holds {state_dir}/stack.lock for over {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
