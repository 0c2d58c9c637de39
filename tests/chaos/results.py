"""A chaos run's figures as a dated Markdown section, printed and appended to the results file (append
only: other runs and benchmarks append to the same file)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from services.simulator.evaluate import Report

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS = ROOT / "bench" / "results" / "2026-12-01.md"


def results_path() -> Path:
    """JOURNEYS_CHAOS_RESULTS names another file (e.g. in CI, to keep the checkout clean)."""
    return Path(os.environ.get("JOURNEYS_CHAOS_RESULTS") or DEFAULT_RESULTS)


def render(
    title: str,
    run: dict[str, Any],
    figures: dict[str, Any],
    report: Report,
    fault_lines: list[str],
    examples: dict[str, list[str]],
    failures: list[str],
) -> str:
    rows = [f"## {title}", ""]
    rows += [f"- {k}: {v}" for k, v in run.items()]
    rows += ["", "| figure | value |", "|---|---|"]
    rows += [f"| {k.replace('_', ' ')} | {v} |" for k, v in figures.items()]
    rows += [
        "",
        "| alert type | expected | raised | matched | precision | recall | |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in report.types.values():
        ok = "ok" if min(s.precision, s.recall) >= 0.99 else "BELOW 0.99"
        rows.append(
            f"| {s.type} | {s.expected} | {s.raised} | {s.matched_expected} | {s.precision:.4f} | "
            f"{s.recall:.4f} | {ok} |"
        )
    rows += ["", "Faults, in order (seconds after the replay started):", "", "```", *fault_lines, "```"]
    shown = {k: v for k, v in examples.items() if v}
    if shown:
        rows += ["", "Examples:", ""]
        for k, v in shown.items():
            rows.append(f"- {k}: " + "; ".join(v))
    rows += ["", "Verdict: " + ("PASS" if not failures else "FAIL — " + "; ".join(failures)), "", ""]
    return "\n".join(rows)


def append(path: Path, text: str) -> None:
    """One write in append mode under an exclusive lock, so concurrent appenders never interleave lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.write(("\n" if path.stat().st_size else "") + text)
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
