"""docker-compose.yml is valid for Docker users (no engine needed for `config`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.stack.install import compose_command

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
# Compose has no default secrets (tests/integration/security/test_compose_secrets.py): give it some.
SECRETS = {"JOURNEYS_HMAC_SECRET": "h" * 64, "JOURNEYS_API_TOKENS": f"ops:admin:{'0' * 64}"}


def test_compose_file_is_valid() -> None:
    if shutil.which("docker") is None and shutil.which("docker-compose") is None:
        pytest.skip("no docker client on this machine")
    compose = compose_command()
    assert compose is not None, "docker client without compose: `journeys setup` installs docker-compose"
    done = subprocess.run(
        [*compose, "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **SECRETS},
    )
    assert done.returncode == 0, done.stderr


def test_compose_runs_every_service_with_the_shared_ports() -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert {"kafka", "redis", "stitcher", "gap_detector", "map", "api", "prometheus", "grafana"} <= set(
        services
    )
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert [services[s]["command"] for s in ("stitcher", "gap_detector", "map", "api")] == [
        ["stitcher"],
        ["detector"],
        ["map"],
        ["api"],
    ]
    apps = ("stitcher", "gap_detector", "map", "api")
    assert all(services[s]["build"]["dockerfile"] == "deploy/Dockerfile" for s in apps)
    assert services["stitcher"]["environment"]["JOURNEYS_STITCHER_METRICS_PORT"] == "9101"
    assert services["gap_detector"]["environment"]["JOURNEYS_DETECTOR_METRICS_PORT"] == "9102"
    assert services["map"]["environment"]["JOURNEYS_MAP_METRICS_PORT"] == "9103"
    # Prometheus scrapes every service by its name (prometheus.compose.yml), so each must exist.
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.compose.yml").read_text())
    hosts = {j["static_configs"][0]["targets"][0].split(":")[0] for j in prom["scrape_configs"]}
    assert hosts == set(apps) and set(apps) <= set(services["prometheus"]["depends_on"])
    assert services["api"]["environment"]["JOURNEYS_API_PORT"] == "8088"
    assert (ROOT / "deploy" / "Dockerfile").is_file()
    mounts = services["prometheus"]["volumes"] + services["grafana"]["volumes"]
    assert "./deploy/prometheus/prometheus.compose.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts


def test_cluster_profile_is_valid() -> None:
    if shutil.which("docker") is None and shutil.which("docker-compose") is None:
        pytest.skip("no docker client on this machine")
    compose = compose_command()
    assert compose is not None, "docker client without compose: `journeys setup` installs docker-compose"
    done = subprocess.run(
        [*compose, "--profile", "cluster", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **SECRETS},
    )
    assert done.returncode == 0, done.stderr


def test_cluster_profile_runs_the_services_on_three_masters() -> None:
    from services.common.redis_conn import is_cluster, parse_cluster_url

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    nodes = ["redis-node-1", "redis-node-2", "redis-node-3"]
    for node in nodes:
        assert services[node]["profiles"] == ["cluster"]
        assert services[node]["command"][:3] == ["redis-server", "--cluster-enabled", "yes"]
    create = services["redis-cluster-create"]
    assert create["profiles"] == ["cluster"] and create["restart"] == "no"
    assert sorted(create["depends_on"]) == nodes
    assert "--cluster-replicas 0 --cluster-yes" in create["command"][0]
    apps = (("stitcher", "stitcher"), ("gap_detector", "detector"), ("map", "map"), ("api", "api"))
    for name, command in apps:
        single, cluster = services[name], services[f"{name}-cluster"]
        assert "profiles" not in single and single["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert cluster["profiles"] == ["cluster"] and cluster["command"] == [command]
        url = cluster["environment"]["REDIS_URL"]
        assert is_cluster(url) and [h for h, _ in parse_cluster_url(url).nodes] == nodes
        created = cluster["depends_on"]["redis-cluster-create"]
        assert created == {"condition": "service_completed_successfully"}
        assert "redis" not in cluster["depends_on"]
        assert cluster["networks"]["default"]["aliases"] == [name]  # Prometheus scrapes the usual name
