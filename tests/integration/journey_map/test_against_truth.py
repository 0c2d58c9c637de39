"""The journey map against the simulator's ground truth: simulate -> replay -> `journeys stitcher`,
`journeys detector` and `journeys map` on the real Kafka and Redis -> GET /api/v1/journey-map per journey
type, compared with what the ground truth implies per stage: entries, conversions, abandonments (exactly),
sentiment means (within rounding) and stalled drop-offs (the detector's stalls, as the truth lists them).

The expected figures come from the truth's true customers and their events, walked here in event time
with the map's documented definitions (docs/journey-map.md), written independently of services/journey_map.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from services.common.timeutil import format_ms, now_ms, parse_rfc3339_ms
from services.gap_detector.core.definitions import load_definitions
from tests.conftest import Infra, Topics
from tests.helpers import free_port, http_ok, poll, stop_process
from tests.integration.api.conftest import AUTH, api_settings

pytestmark = pytest.mark.integration
JOURNEYS = [sys.executable, "-m", "services.cli.main"]
DAY_MS = 86_400_000
DEFS = load_definitions()
# A larger run by hand: JOURNEYS_MAP_TRUTH_CUSTOMERS=1000 (the replay rate grows with it).
CUSTOMERS = int(os.environ.get("JOURNEYS_MAP_TRUTH_CUSTOMERS", "150"))


@contextmanager
def _worker(command: str, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (cwd / f"{command}.log").open("wb")
    proc = subprocess.Popen([*JOURNEYS, command], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc)
        log.close()


def expected_figures(truth: dict[str, Any], population: Path) -> dict[tuple[str, str], Counter[str]]:
    """(journey, stage) -> entries, conversions, abandoned, sentiment sum/count, from the true customers."""
    values: dict[str, dict[str, Any]] = {}
    for line in population.read_bytes().splitlines():
        rec = orjson.loads(line)
        if isinstance(rec.get("value"), dict):
            values[rec["value"]["event_id"]] = rec["value"]
    out: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for info in truth["customers"].values():
        evs = sorted(
            (values[e] for e in info["events"] if e in values and "journey" in values[e]),
            key=lambda v: (parse_rfc3339_ms(v["occurred_at"]), v["event_id"]),
        )
        current: dict[str, str] = {}  # journey type -> stage the customer is at (none after a terminal one)
        for v in evs:
            j, s = v["journey"]["type"], v["journey"]["stage"]
            jt = DEFS.journeys[j]
            order = [st.name for st in jt.stages] + sorted(jt.terminal)
            prev = current.get(j)
            if prev != s:
                out[(j, s)]["entries"] += 1
                forward = prev is not None and order.index(s) > order.index(prev)
                if forward and v.get("outcome") != "abandoned":
                    out[(j, prev)]["conversions"] += 1
            if v.get("outcome") == "abandoned":
                out[(j, prev if s in jt.terminal and prev not in (None, s) else s)]["abandoned"] += 1
            if "sentiment" in v:
                out[(j, s)]["sentiment_n"] += 1
                out[(j, s)]["sentiment_milli"] += round(v["sentiment"] * 1000)
            if s in jt.terminal:
                current.pop(j, None)
            else:
                current[j] = s
    for alert in truth["alerts"]:
        if alert["type"] == "stall":
            out[(alert["journey"], alert["stage"])]["stalled"] += 1
    return out


async def test_the_map_equals_what_the_ground_truth_implies(
    tmp_path: Path, infra: Infra, topics: Topics, service_env: dict[str, str], redis_client: Any
) -> None:
    start = format_ms((now_ms() - 4 * DAY_MS) // 60_000 * 60_000)
    pop = tmp_path / "pop.jsonl"
    done = subprocess.run(
        [
            *JOURNEYS,
            "simulate",
            "--customers",
            str(CUSTOMERS),
            "--seed",
            "5",
            "--start",
            start,
            "--span",
            "3d",
            "--out",
            str(pop),
        ],
        env=service_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    truth = orjson.loads((tmp_path / "pop.truth.json").read_bytes())
    expected = expected_figures(truth, pop)
    ports = {name: free_port() for name in ("stitcher", "detector", "map")}
    env = {
        **service_env,
        "JOURNEYS_TIMER_CLOCK": "event",
        "JOURNEYS_LOG_LEVEL": "WARNING",
        "JOURNEYS_STITCHER_METRICS_PORT": str(ports["stitcher"]),
        "JOURNEYS_DETECTOR_METRICS_PORT": str(ports["detector"]),
        "JOURNEYS_MAP_METRICS_PORT": str(ports["map"]),
    }
    with (
        _worker("stitcher", env, tmp_path),
        _worker("detector", env, tmp_path),
        _worker("map", env, tmp_path),
    ):
        poll(
            lambda: all(http_ok(f"http://127.0.0.1:{p}/metrics") for p in ports.values()),
            timeout=90,
            interval=0.25,
            what="stitcher, detector and map metrics endpoints",
        )
        done = subprocess.run(
            [*JOURNEYS, "replay", str(pop), "--rate", str(max(200, CUSTOMERS))],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        async with TestClient(TestServer(create_app(api_settings(service_env)))) as api:
            window = {"since": str(parse_rfc3339_ms(start) - DAY_MS), "until": str(now_ms() + DAY_MS)}

            async def figures() -> dict[tuple[str, str], Counter[str]]:
                got: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
                for j in DEFS.journeys:
                    resp = await api.get("/api/v1/journey-map", params={"journey": j, **window}, headers=AUTH)
                    assert resp.status == 200, await resp.text()
                    for st in (await resp.json())["stages"]:
                        c = got[(j, st["name"])]
                        c.update(
                            {
                                "entries": st["entries"],
                                "conversions": st["conversions"],
                                "abandoned": st["dropoffs"]["abandoned"],
                                "stalled": st["dropoffs"]["stalled"],
                                "sentiment_n": st["sentiment"]["count"],
                            }
                        )
                        c["sentiment_mean"] = st["sentiment"]["mean"] or 0
                return got

            def view(f: dict[tuple[str, str], Counter[str]], metric: str) -> dict[tuple[str, str], int]:
                return {k: c[metric] for k, c in f.items() if c[metric]}

            deadline_got: dict[tuple[str, str], Counter[str]] = {}
            for _ in range(240 + CUSTOMERS // 2):  # ~2 min (more for a larger run) to drain the replay
                deadline_got = await figures()
                if all(
                    view(deadline_got, m) == view(expected, m)
                    for m in ("entries", "conversions", "abandoned", "sentiment_n", "stalled")
                ):
                    break
                await _pause()
            got = deadline_got
    for metric in ("entries", "conversions", "abandoned", "sentiment_n"):
        assert view(got, metric) == view(expected, metric), (metric, _tail(tmp_path / "map.log"))
    for key, c in expected.items():
        if c["sentiment_n"]:
            assert got[key]["sentiment_mean"] == pytest.approx(
                c["sentiment_milli"] / 1000 / c["sentiment_n"], abs=1e-4
            ), key
    stalled_expected, stalled_got = view(expected, "stalled"), view(got, "stalled")
    assert stalled_got == stalled_expected, (stalled_got, stalled_expected)
    totals = {m: sum(view(got, m).values()) for m in ("entries", "conversions", "abandoned", "stalled")}
    print(
        f"journey map vs ground truth: {len(truth['customers'])} customers, {truth['counts']['events']} "
        f"events, {totals}"
    )
    assert totals["entries"] > 300 and totals["abandoned"] > 0 and totals["stalled"] > 0


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.5)  # pacing between polls of the API, not synchronisation


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""
