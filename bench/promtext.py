"""Read a Prometheus /metrics page: sums of samples and quantiles from histogram bucket deltas."""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Mapping, Sequence

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, tuple[tuple[str, str], ...]]
Scrape = Mapping[Sample, float]


def read_metrics(port: int) -> dict[Sample, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return parse(text)


def parse(text: str) -> dict[Sample, float]:
    out: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(scrape: Scrape, name: str, labels: Mapping[str, str] | None = None) -> float:
    """Sum of every sample called ``name`` whose labels include ``labels`` (all series when None)."""
    want = (labels or {}).items()
    return sum(v for (n, lab), v in scrape.items() if n == name and want <= dict(lab).items())


def histogram_quantiles(
    before: Scrape, after: Scrape, name: str, labels: Mapping[str, str], qs: Sequence[float]
) -> list[float]:
    """Quantiles of the observations made between two scrapes (linear within a bucket; NaN when none).

    A quantile in the +Inf bucket is inf: beyond the histogram's largest bound, value unknown."""
    buckets: list[tuple[float, float]] = []
    for (sample, lab), value in after.items():
        d = dict(lab)
        if sample == f"{name}_bucket" and all(d.get(k) == v for k, v in labels.items()):
            le = math.inf if d["le"] == "+Inf" else float(d["le"])
            buckets.append((le, value - before.get((sample, lab), 0.0)))
    buckets.sort()
    total_n = buckets[-1][1] if buckets else 0.0
    result = []
    for q in qs:
        rank, lower, prev = q * total_n, 0.0, 0.0
        value = math.nan
        for le, cum in buckets:
            if cum >= rank and total_n > 0:
                value = (
                    lower + (le - lower) * ((rank - prev) / max(cum - prev, 1e-9))
                    if math.isfinite(le)
                    else math.inf
                )
                break
            lower, prev = le, cum
        result.append(value)
    return result


def stage_breakdown(before: Scrape, after: Scrape, events: int) -> str:
    """Wall time per event in each stage of a worker (journeys_stage_latency_seconds) and its mean batch
    (journeys_batch_size of the busiest stage), between two scrapes: where the time goes."""
    stages: dict[str, float] = {}
    batches: dict[str, tuple[float, float]] = {}
    for (name, lab), value in after.items():
        d, delta = dict(lab), value - before.get((name, lab), 0.0)
        if name == "journeys_stage_latency_seconds_sum" and delta > 0:
            stages[d["stage"]] = delta
        elif name in ("journeys_batch_size_sum", "journeys_batch_size_count"):
            n, count = batches.get(d["stage"], (0.0, 0.0))
            batches[d["stage"]] = (n + delta, count) if name.endswith("sum") else (n, count + delta)
    parts = [f"{stage} {secs / max(events, 1) * 1e6:.1f}" for stage, secs in stages.items()]
    text = "; ".join(parts) + " µs/ev" if parts else "no stage histograms"
    busiest = max(batches.values(), default=(0.0, 0.0))
    return text + (f"; mean batch {busiest[0] / busiest[1]:,.0f}" if busiest[1] else "")
