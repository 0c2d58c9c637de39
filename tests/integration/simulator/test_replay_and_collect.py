"""`journeys simulate --kafka`, `journeys replay` and the evaluation readers on a real Kafka and Redis."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.common.keys import Keys
from services.simulator import collect
from tests.conftest import Infra, Topics
from tests.helpers import run_journeys

pytestmark = pytest.mark.integration


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_journeys(env, *args, timeout=timeout)


def test_replay_keeps_keys_and_bytes_and_reports_bad_lines(
    tmp_path: Path, infra: Infra, topics: Topics, service_env: dict[str, str]
) -> None:
    out = tmp_path / "pop.jsonl"
    done = _run(["simulate", "--customers", "20", "--seed", "3", "--out", str(out)], service_env)
    assert done.returncode == 0, done.stderr
    lines = out.read_bytes().splitlines()
    lines.insert(3, b"{this is not json")
    lines.insert(10, b"[1, 2, 3]")
    out.write_bytes(b"\n".join(lines) + b"\n")

    done = _run(["replay", str(out), "--rate", "0"], service_env)
    assert done.returncode == 0, done.stderr
    assert "2 bad line(s) skipped: 4, 11" in done.stderr

    records = collect.read_records(infra.bootstrap_servers, topics.channel_events, idle_s=1.0, max_wait_s=60)
    expected: list[Any] = [orjson.loads(line) for i, line in enumerate(lines) if i not in (3, 10)]
    assert len(records) == len(expected)
    sent = sorted(
        (d["key"].encode(), d["raw"].encode() if "raw" in d else orjson.dumps(d["value"])) for d in expected
    )
    assert sorted((k or b"", v) for k, v in records) == sent  # keys and bytes as in the file


def test_simulate_to_kafka_writes_the_truth(
    tmp_path: Path, infra: Infra, topics: Topics, service_env: dict[str, str]
) -> None:
    truth = tmp_path / "t.json"
    done = _run(
        ["simulate", "--customers", "10", "--kafka", "--truth", str(truth), "--rate", "2000"], service_env
    )
    assert done.returncode == 0, done.stderr
    doc = orjson.loads(truth.read_bytes())
    assert collect.count_topic(infra.bootstrap_servers, topics.channel_events) == doc["counts"]["records"]


def test_aliases_resolve_through_chains(redis_client: Any, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    redis_client.set(keys.alias("c_a"), "c_b")
    redis_client.set(keys.alias("c_b"), "c_c")
    final = collect.resolve_aliases(redis_client, keys, ["c_a", "c_b", "c_c", "c_z"])
    assert final == {"c_a": "c_c", "c_b": "c_c", "c_c": "c_c", "c_z": "c_z"}
    stitched = [{"event_id": "e1", "customer_id": "c_a"}, {"event_id": "e2", "customer_id": "c_z"}]
    assert collect.stitched_customers(stitched, redis_client, keys) == {"e1": "c_c", "e2": "c_z"}
