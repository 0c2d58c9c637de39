"""Static checks of deploy/: promtool validates config and rules and runs the rule unit tests; the
dashboard and the rules only read metrics of the contract (docs/METRICS.md) with the contract's jobs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.integration.ops.promql import (
    DASHBOARD,
    ROOT,
    dashboard_exprs,
    documented_metrics,
    metric_names,
    rule_exprs,
)

pytestmark = pytest.mark.integration
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
needs_promtool = pytest.mark.skipif(not shutil.which(PROMTOOL), reason="promtool not installed")
PROM = ROOT / "deploy/prometheus"


def promtool(*args: str) -> str:
    proc = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@needs_promtool
def test_promtool_rule_unit_tests_pass() -> None:
    tests = sorted(str(p.relative_to(ROOT)) for p in (PROM / "rules/tests").glob("*.yml"))
    assert tests
    assert "SUCCESS" in promtool("test", "rules", *tests)


@needs_promtool
@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_promtool_accepts_the_configs_and_rules(config: str) -> None:
    out = promtool("check", "config", str(PROM / config))
    assert "SUCCESS: 8 rules found" in out


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_the_four_jobs_scrape_the_contract_ports(config: str) -> None:
    jobs = {
        j["job_name"]: j["static_configs"][0]["targets"][0]
        for j in yaml.safe_load((PROM / config).read_text())["scrape_configs"]
    }
    assert {name: target.split(":")[1] for name, target in jobs.items()} == {
        "stitcher": "9101",
        "gap_detector": "9102",
        "map": "9103",
        "api": "8088",
    }


def test_every_metric_read_is_in_the_contract() -> None:
    known = set(documented_metrics()) | {"up"}
    for where, expr in dashboard_exprs() + rule_exprs():
        assert metric_names(expr) <= known, (where, metric_names(expr) - known)


def test_the_dashboard_covers_what_ops_watches() -> None:
    read = set().union(*(metric_names(e) for _, e in dashboard_exprs()))
    for needed in (
        "journeys_events_in_total",
        "journeys_consumer_lag_messages",
        "journeys_end_to_end_latency_seconds",
        "journeys_alerts_total",
        "journeys_dropoff_rate",
        "journeys_lookup_latency_seconds",
        "journeys_map_records_total",
        "journeys_map_records_skipped_total",
        "journeys_map_batch_seconds",
    ):
        assert needed in read


def test_every_scraped_job_is_on_the_dashboard_and_watched_for_down() -> None:
    jobs = {j["job_name"] for j in yaml.safe_load((PROM / "prometheus.yml").read_text())["scrape_configs"]}
    for expr in (dict(dashboard_exprs())["Services up"], dict(rule_exprs())["JourneysServiceDown"]):
        matched = re.search(r'job=~"([^"]+)"', expr)
        assert matched and set(matched.group(1).split("|")) == jobs, expr


def test_panels_use_the_provisioned_datasource() -> None:
    ds = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = ds["datasources"][0]["uid"]
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/journeys.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
            assert all(t["datasource"]["uid"] == uid for t in panel["targets"])
