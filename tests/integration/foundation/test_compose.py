"""docker-compose.yml is valid for Docker users (no engine needed for `config`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.stack.install import compose_command

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def test_compose_file_is_valid() -> None:
    if shutil.which("docker") is None and shutil.which("docker-compose") is None:
        pytest.skip("no docker client on this machine")
    compose = compose_command()
    assert compose is not None, "docker client without compose: `journeys setup` installs docker-compose"
    done = subprocess.run(
        [*compose, "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_compose_runs_every_service_with_the_shared_ports() -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert {"kafka", "redis", "stitcher", "gap_detector", "api", "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert [services[s]["command"] for s in ("stitcher", "gap_detector", "api")] == [
        ["stitcher"],
        ["detector"],
        ["api"],
    ]
    apps = ("stitcher", "gap_detector", "api")
    assert all(services[s]["build"]["dockerfile"] == "deploy/Dockerfile" for s in apps)
    assert services["stitcher"]["environment"]["JOURNEYS_STITCHER_METRICS_PORT"] == "9101"
    assert services["gap_detector"]["environment"]["JOURNEYS_DETECTOR_METRICS_PORT"] == "9102"
    assert services["api"]["environment"]["JOURNEYS_API_PORT"] == "8088"
    assert (ROOT / "deploy" / "Dockerfile").is_file()
    mounts = services["prometheus"]["volumes"] + services["grafana"]["volumes"]
    assert "./deploy/prometheus/prometheus.compose.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
