"""The broker's jars: resolved once from Maven Central with mvn, cached per Kafka version."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from services.common.errors import UserError
from services.stack.settings import PROJECT_ROOT

POM = PROJECT_ROOT / "deploy" / "kafka" / "pom.xml"
_COMPLETE = ".complete"
MVN_TIMEOUT_S = 600


def jars_ready(libs: Path) -> bool:
    return (libs / _COMPLETE).is_file()


def require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise UserError("Java is missing: install a JRE 17+ (apt-get install -y openjdk-17-jre-headless)")
    return java


def ensure_kafka_jars(libs: Path) -> bool:
    """Download the jars into ``libs`` unless already there. True when it downloaded."""
    if jars_ready(libs):
        return False
    require_java()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise UserError("Maven is missing: install it (apt-get install -y maven) to fetch the Kafka jars")
    # Resolve into a sibling folder and rename, so a half-finished download is never used.
    tmp = libs.with_name(f"{libs.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={tmp}",
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=MVN_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UserError(f"mvn did not finish in {MVN_TIMEOUT_S} s fetching the Kafka jars") from exc
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = _mvn_error(done.stdout + done.stderr)
        raise UserError(f"cannot fetch the Kafka jars from Maven Central: {reason}")
    (tmp / _COMPLETE).write_text("ok\n")
    libs.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(libs)
    except OSError:
        # Another clone finished first: keep its copy.
        shutil.rmtree(tmp, ignore_errors=True)
        if not jars_ready(libs):
            raise
    return True


def _mvn_error(output: str) -> str:
    """The most telling line of mvn's output (the first [ERROR] line, else the last line)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("[ERROR]")]
    return (errors or lines or ["mvn failed without output"])[0]
