"""The benchmark's reading of Prometheus text: sums by label subset and quantiles of bucket deltas."""

from __future__ import annotations

import math

import pytest

from bench.promtext import histogram_quantiles, parse, stage_breakdown, total

pytestmark = pytest.mark.unit


def scrape(buckets: dict[str, float], step: str = "journey", other: float = 0.0) -> str:
    lines = ["# TYPE journeys_end_to_end_latency_seconds histogram"]
    lines += [
        f'journeys_end_to_end_latency_seconds_bucket{{le="{le}",step="{step}"}} {n}'
        for le, n in buckets.items()
    ]
    lines += [
        f'journeys_end_to_end_latency_seconds_bucket{{le="+Inf",step="alert"}} {other}',
        "# TYPE journeys_batch_size histogram",
        'journeys_batch_size_bucket{le="+Inf",stage="rules"} 3',
        'journeys_batch_size_sum{stage="rules"} 1200.0',
        'journeys_batch_size_sum{stage="decode"} 7.0',
        'journeys_batch_size_count{stage="rules"} 3',
    ]
    return "\n".join(lines) + "\n"


def test_total_sums_only_series_carrying_the_asked_labels() -> None:
    s = parse(scrape({"0.01": 1, "+Inf": 1}))
    assert total(s, "journeys_batch_size_sum", {"stage": "rules"}) == 1200.0
    assert total(s, "journeys_batch_size_sum") == 1207.0
    assert total(s, "journeys_batch_size_sum", {"stage": "nope"}) == 0.0


def test_quantiles_come_from_the_observations_between_two_scrapes_only() -> None:
    # Before: 100 slow observations (in the 1 s bucket). Between: 100 more, 90 under 10 ms, 10 under 50 ms.
    before = parse(scrape({"0.01": 0, "0.05": 0, "1.0": 100, "+Inf": 100}))
    after = parse(scrape({"0.01": 90, "0.05": 100, "1.0": 200, "+Inf": 200}, other=5))
    p50, p99 = histogram_quantiles(
        before, after, "journeys_end_to_end_latency_seconds", {"step": "journey"}, (0.5, 0.99)
    )
    assert p50 == pytest.approx(0.01 * 50 / 90)
    assert 0.01 < p99 <= 0.05


def test_a_quantile_in_the_inf_bucket_is_infinite_and_no_data_is_nan() -> None:
    after = parse(scrape({"0.01": 0, "30.0": 0, "+Inf": 10}))
    name = "journeys_end_to_end_latency_seconds"
    (p99,) = histogram_quantiles({}, after, name, {"step": "journey"}, (0.99,))
    assert p99 == math.inf
    (none,) = histogram_quantiles(after, after, name, {"step": "journey"}, (0.5,))
    assert math.isnan(none)


def test_stage_breakdown_is_wall_time_per_event_between_scrapes_with_the_busiest_batch() -> None:
    def page(decode: float, stitch: float, n_sum: float, n_count: float) -> str:
        return (
            "# TYPE journeys_stage_latency_seconds histogram\n"
            f'journeys_stage_latency_seconds_sum{{stage="decode"}} {decode}\n'
            f'journeys_stage_latency_seconds_sum{{stage="stitch"}} {stitch}\n'
            "# TYPE journeys_batch_size histogram\n"
            f'journeys_batch_size_sum{{stage="stitch"}} {n_sum}\n'
            f'journeys_batch_size_count{{stage="stitch"}} {n_count}\n'
        )

    before, after = parse(page(1.0, 2.0, 500, 1)), parse(page(1.1, 2.5, 10_500, 11))
    assert stage_breakdown(before, after, 10_000) == "decode 10.0; stitch 50.0 µs/ev; mean batch 1,000"
    assert stage_breakdown(after, after, 10_000) == "no stage histograms"
