"""docker-compose.yml has no default secrets: without JOURNEYS_HMAC_SECRET or JOURNEYS_API_TOKENS it
stops before starting anything, saying what to set (it used to pass empty strings: an empty HMAC key and
an API that accepted a bare 'Bearer'). `config` needs no Docker engine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from services.stack.install import compose_command

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
SECRETS = {"JOURNEYS_HMAC_SECRET": "h" * 64, "JOURNEYS_API_TOKENS": f"ops:admin:{'0' * 64}"}


def config(env: dict[str, str], *profile: str) -> subprocess.CompletedProcess[str]:
    compose = compose_command()
    if compose is None:
        pytest.skip("no docker compose on this machine")
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [*compose, *profile, "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **env},
    )


@pytest.mark.parametrize("profile", [(), ("--profile", "cluster")])
@pytest.mark.parametrize(
    "missing, says",
    [
        ("JOURNEYS_HMAC_SECRET", "set JOURNEYS_HMAC_SECRET to 32+ random bytes"),
        ("JOURNEYS_API_TOKENS", "set JOURNEYS_API_TOKENS to name:role:sha256hex entries"),
    ],
)
def test_compose_refuses_to_run_without_a_secret(missing: str, says: str, profile: tuple[str, ...]) -> None:
    for value in (None, ""):  # unset, or set to nothing
        env = {k: v for k, v in SECRETS.items() if k != missing}
        if value is not None:
            env[missing] = value
        done = config(env, *profile)
        assert done.returncode != 0 and says in done.stderr, done.stderr[-1000:]


def test_compose_runs_with_both_secrets() -> None:
    done = config(SECRETS)
    assert done.returncode == 0, done.stderr[-1000:]
