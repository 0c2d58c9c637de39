"""Start the real services and a real Prometheus as subprocesses for the ops test."""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.helpers import free_port, poll, stop_process
from tests.integration.ops.promql import family

PROMETHEUS = "/usr/bin/prometheus"


def http_get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except OSError:
        return 0, b""


@contextmanager
def service(command: str, env: dict[str, str], log: Path, metrics_url: str) -> Iterator[None]:
    """``journeys <command>`` until the test ends; ready once its /metrics answers; SIGTERM after."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", command],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        poll(
            lambda: proc.poll() is not None or http_get(metrics_url)[0] == 200,
            timeout=90,
            interval=0.2,
            what=f"journeys {command} to serve {metrics_url}",
        )
        assert proc.poll() is None, f"journeys {command} exited: {log.read_text()[-3000:]}"
        yield
    finally:
        stop_process(proc)


@contextmanager
def prometheus(tmp: Path, targets: dict[str, str], rule_files: list[Path]) -> Iterator[str]:
    """A Prometheus on loopback scraping ``job -> host:port`` every second; yields its base URL."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [t]}]} for job, t in targets.items()
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (tmp / "prometheus.log").open("ab") as out:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        poll(
            lambda: proc.poll() is not None or http_get(f"{base}/-/ready")[0] == 200,
            timeout=60,
            what="Prometheus to be ready",
        )
        assert proc.poll() is None, (tmp / "prometheus.log").read_text()[-3000:]
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def query(base: str, expr: str) -> dict[str, Any]:
    """The query API's answer: {'status': 'success'|'error', 'data'|'error': …}."""
    status, body = http_get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    answer: dict[str, Any] = orjson.loads(body) if body else {"status": "error", "error": f"HTTP {status}"}
    return answer


def scraped_names(base: str) -> set[str]:
    """Metric families Prometheus holds series of."""
    _, body = http_get(f"{base}/api/v1/label/__name__/values")
    return {family(str(n)) for n in orjson.loads(body)["data"]}
