"""deploy/systemd/: the production route for a crashed worker is systemd's restart, with the env file."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
UNITS = Path(__file__).resolve().parents[3] / "deploy" / "systemd"
SERVICES = {
    "journeys-stitcher.service": "stitcher",
    "journeys-detector.service": "detector",
    "journeys-api.service": "api",
    "journeys-map.service": "map",
}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_restarts_on_failure_with_a_delay_and_reads_the_env_file(name: str) -> None:
    u = unit(name)
    service = u["Service"]
    assert service["ExecStart"].split()[1:] == [SERVICES[name]]
    assert service["ExecStart"].split()[0].endswith("/bin/journeys")
    assert service["Restart"] == "on-failure"
    assert service["RestartSec"].endswith("s") and float(service["RestartSec"][:-1]) > 0
    assert service["EnvironmentFile"] == "/etc/journeys/journeys.env"
    assert service["KillSignal"] == "SIGTERM"  # finishes and commits the batch in flight
    assert u["Unit"]["StartLimitIntervalSec"] == "0"  # never gives up during a long outage
    assert u["Install"]["WantedBy"] == "journeys.target"


def test_the_target_starts_all_four_and_the_env_file_names_real_variables() -> None:
    assert set(unit("journeys.target")["Unit"]["Wants"].split()) == set(SERVICES)
    from services.stack import envdoc

    known = {row[0] for row in envdoc.rows()}
    lines = [
        ln
        for ln in (UNITS / "journeys.env.example").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines and {ln.split("=", 1)[0] for ln in lines} <= known
