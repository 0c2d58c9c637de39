"""``journeys split`` / ``journeys why`` as an admin runs them (subprocesses, real Redis and Kafka): a wrongly
merged customer split by its identifiers, the same command again changes nothing, ``why`` and the output
show masks only, a refusal is one clear line, ``--undo`` merges back."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import orjson
import pytest

from services.common.keys import Keys
from services.common.redis_conn import connect
from services.common.timeutil import now_ms
from services.stitcher.adapters.redis_store import RedisStitchStore
from services.stitcher.core.batch import bare_record, prepare
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.hashed_identifiers import IdentifierHasher
from services.stitcher.settings import parse_limits
from tests.conftest import Infra, Topics
from tests.integration.stitcher.support import create_topics, event
from tests.integration.stitcher.test_worker import journey_ids

pytestmark = pytest.mark.integration


def journeys(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def stitch(env: dict[str, str], keys: Keys, items: list[dict[str, Any]]) -> str:
    hasher = IdentifierHasher(env["JOURNEYS_HMAC_SECRET"].encode(), "GB")
    batch = prepare([bare_record(orjson.dumps(i)) for i in items], hasher, now_ms(), DecodePolicy())

    async def run() -> str:
        client = connect(env["REDIS_URL"])
        try:
            store = RedisStitchStore(client, keys, parse_limits(""), 100, 3_600_000)
            done = await store.stitch(batch.ready, now_ms())
            return done[-1].resolution.customer_id
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_split_why_repeat_and_undo_from_the_command_line(
    infra: Infra, topics: Topics, redis_client: Any, service_env: dict[str, str], key_prefix: str
) -> None:
    create_topics(infra.bootstrap_servers, topics)
    keys = Keys(key_prefix)
    cid = stitch(
        service_env,
        keys,
        [
            event("a0", email="ann@shop.com"),
            event("b0", email="bob@shop.com", cookie_id="ck-bob"),
            event("x0", email="ann@shop.com", cookie_id="ck-bob"),
        ],
    )
    assert sorted(journey_ids(redis_client, keys, cid)) == ["a0", "b0", "x0"]

    done = journeys(
        service_env, "split", cid, "--email", "bob@shop.com", "--cookie-id", "ck-bob", "--by", "ops"
    )
    assert done.returncode == 0, done.stderr
    out = orjson.loads(done.stdout)
    assert "bob@shop.com" not in done.stdout and "ck-bob" not in done.stdout
    new = out["new_customer"]
    assert out["customer"] == cid and out["state"] == "applied"  # the id stays with its minting identifier
    by_journey = {tuple(journey_ids(redis_client, keys, c)): c for c in (cid, new)}
    assert set(by_journey) == {("b0",), ("a0", "x0")}  # x0 follows its strongest identifier, Ann's e-mail
    bob = by_journey[("b0",)]

    again = journeys(service_env, "split", cid, "--email", "bob@shop.com", "--cookie-id", "ck-bob")
    assert again.returncode == 0, again.stderr  # e.g. after a crash before the answer: finished, same split
    assert orjson.loads(again.stdout)["split_id"] == out["split_id"]
    other = journeys(service_env, "split", cid, "--email", "ann@shop.com", "--cookie-id", "ck-bob")
    assert other.returncode != 0 and "not part of this customer" in other.stderr
    why = journeys(service_env, "why", bob, "--email", "bob@shop.com")
    assert why.returncode == 0, why.stderr
    assert "bob@shop.com" not in why.stdout and orjson.loads(why.stdout)["links"]
    refused = journeys(service_env, "split", "c_0000000000000000", "--email", "x@shop.com")
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr

    undone = journeys(service_env, "split", "--undo", out["split_id"])
    assert undone.returncode == 0, undone.stderr
    assert orjson.loads(undone.stdout)["state"] == "undone"
    assert sorted(journey_ids(redis_client, keys, cid)) == ["a0", "b0", "x0"]
