"""`journeys setup` and `up` fail in one clear line when a tool is missing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import free_port, run_journeys

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def run_without_tools(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`journeys ...` with a PATH holding nothing but our interpreter (no java, mvn, redis-server)."""
    env = {
        **os.environ,
        "PATH": str(tmp_path / "empty-bin"),
        "JOURNEYS_CACHE_DIR": str(tmp_path / "cache"),
        "JOURNEYS_STATE_DIR": str(tmp_path / "state"),
        "JOURNEYS_KAFKA_PORT": str(free_port()),
        "JOURNEYS_KAFKA_CONTROLLER_PORT": str(free_port()),
        "JOURNEYS_REDIS_PORT": str(free_port()),
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("REDIS_URL", None)
    return run_journeys(env, *args, timeout=60, cwd=str(ROOT))


def test_setup_without_java_says_so_in_one_line(tmp_path: Path) -> None:
    done = run_without_tools(tmp_path, "setup")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "journeys: error: Java is missing: install a JRE 17+ (apt-get install -y openjdk-17-jre-headless)"
    ]


def test_up_without_jars_or_java_starts_nothing(tmp_path: Path) -> None:
    done = run_without_tools(tmp_path, "up", "--infra-only")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("journeys: error: Java is missing")
    assert not (tmp_path / "state" / "stack.json").exists()


def test_an_apt_failure_is_one_line_naming_the_command() -> None:
    import shutil

    from services.common.errors import UserError
    from services.stack.install import apt_install

    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("needs apt-get as root")
    said: list[str] = []
    with pytest.raises(UserError) as failure:
        apt_install(["journeys-no-such-package"], said.append)
    message = str(failure.value)
    assert "\n" not in message
    install = "`apt-get install -y --no-install-recommends journeys-no-such-package` failed: E:"
    assert message.startswith((install, "`apt-get update` failed: "))
    assert said[0] == "apt-get update"
