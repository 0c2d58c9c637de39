"""`journeys setup`: install what the local stack and the tests need, only what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from services.common.errors import UserError

APT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Tool:
    binary: str  # looked up on PATH
    packages: tuple[str, ...]  # Debian packages providing it
    why: str


TOOLS = (
    Tool("redis-server", ("redis-server",), "Redis of the local stack"),
    Tool("promtool", ("prometheus",), "checks the Prometheus alert rules in the tests"),
    # Installed without recommends, so bring a font along: pages must render text in screenshots.
    Tool("chromium", ("chromium", "fonts-liberation"), "headless browser tests of the agent page"),
)


def missing_tools() -> list[Tool]:
    tools = [t for t in TOOLS if shutil.which(t.binary) is None]
    if shutil.which("docker") is not None and not compose_available():
        why = "validates docker-compose.yml (docker client without the compose plugin)"
        tools.append(Tool("docker-compose", ("docker-compose",), why))
    return tools


def compose_command() -> list[str] | None:
    """`docker compose` (plugin) or the standalone `docker-compose`, whichever answers."""
    if shutil.which("docker") is not None and _runs(["docker", "compose", "version"]):
        return ["docker", "compose"]
    if shutil.which("docker-compose") is not None and _runs(["docker-compose", "version"]):
        return ["docker-compose"]
    return None


def compose_available() -> bool:
    return compose_command() is not None


def _runs(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def apt_install(packages: list[str], say: Callable[[str], None]) -> None:
    """`apt-get update && apt-get install -y` (via sudo -n when not root); one-line error on failure."""
    if shutil.which("apt-get") is None:
        raise UserError(f"apt-get not found: install {' '.join(packages)} with your package manager")
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise UserError(
                f"installing {' '.join(packages)} needs root: run "
                f"`apt-get install -y {' '.join(packages)}` as root"
            )
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *packages]):
        say(" ".join(cmd))
        try:
            done = subprocess.run(
                [*prefix, *cmd], capture_output=True, text=True, env=env, timeout=APT_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise UserError(f"`{' '.join(cmd)}` did not finish in {APT_TIMEOUT_S} s") from exc
        if done.returncode != 0:
            lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            errors = [ln for ln in lines if ln.startswith(("E:", "W:"))] or lines or ["no output"]
            raise UserError(f"`{' '.join(cmd)}` failed: {errors[0].strip()}")
