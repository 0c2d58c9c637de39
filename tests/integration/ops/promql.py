"""The PromQL of deploy/: every expression of the Grafana dashboard and of the alert rules, and the
metric names each one reads (checked against docs/METRICS.md and against live scrapes)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy/grafana/dashboards/journeys.json"
RULES_DIR = ROOT / "deploy/prometheus/rules"
METRICS_DOC = ROOT / "docs/METRICS.md"
# Grafana's range variable; Prometheus itself needs a literal window.
GRAFANA_VARS = {"$__rate_interval": "1m"}
_NAME = re.compile(r"\b(journeys_[a-z0-9_]+|up)\b")
_HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every dashboard target, Grafana variables substituted."""
    out = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            out.append((panel["title"], expr))
    return out


def rule_exprs() -> list[tuple[str, str]]:
    """(alert name, PromQL) of every rule in deploy/prometheus/rules/*.yml."""
    out = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        doc: dict[str, Any] = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            out += [(r.get("alert") or r["record"], r["expr"]) for r in group["rules"]]
    return out


def family(name: str) -> str:
    """The metric family of a series name (histogram _bucket/_sum/_count mapped to the histogram)."""
    return _HISTOGRAM_SUFFIX.sub("", name)


def metric_names(expr: str) -> set[str]:
    """Metric families an expression reads."""
    return {family(n) for n in _NAME.findall(expr)}


def documented_metrics() -> dict[str, str]:
    """metric name -> services column of the docs/METRICS.md table."""
    out = {}
    for line in METRICS_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 4 and cells[1].startswith("`journeys_"):
            out[cells[1].strip("`")] = cells[4]
    return out
