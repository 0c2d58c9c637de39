"""Erasure: afterwards a scan of the whole prefix finds nothing of the customer or its aliases."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from services.common.keys import Keys
from services.stitcher.core.identifiers import lookup_key
from tests.integration.api import story
from tests.integration.api.conftest import AUTH, api_settings

pytestmark = pytest.mark.integration
Client = TestClient[Any, Any]


def everything(redis: Any, prefix: str, audit: str) -> dict[str, bytes]:
    """Every key of the prefix with a dump of its content (the audit streams aside: the erasure audit and
    the access audit keep the pseudonymous id on purpose, docs/security.md)."""
    out = {}
    for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        if key.decode() in (audit, f"{prefix}:audit:access"):
            continue
        kind = redis.type(key).decode()
        content: Any = {
            "string": redis.get,
            "hash": redis.hgetall,
            "set": redis.smembers,
            "zset": lambda k: redis.zrange(k, 0, -1),
        }[kind](key)
        out[key.decode()] = repr(content).encode()
    return out


async def test_erase_leaves_no_key_or_value_of_the_customer(
    client: Client,
    seeded: Keys,
    redis_client: Any,
    key_prefix: str,
    service_env: dict[str, str],
) -> None:
    settings = api_settings(service_env)
    raw_ids = (("phone", story.ALICE_PHONE), ("email", story.ALICE_EMAIL), ("cookie_id", story.ALICE_COOKIE))
    alice_ids = [lookup_key(settings, t, v) for t, v in raw_ids]
    # What the detector and the stitcher keep beyond the customer's own keys: leased timers and the
    # merge-outcome replay records (keyed by event id) that name the customer.
    redis_client.zadd(seeded.timers_inflight, {f"{story.ALICE}|purchase": 9, f"{story.BOB}|support": 9})
    redis_client.set(
        seeded.merge_outcome("call-77"),
        f'["{story.ALICE}",[],[["merge","{story.ALICE}","{story.ALICE_OLD}",["email"],false]]]',
    )
    redis_client.set(seeded.merge_outcome("b-2"), f'["{story.BOB}",[],[]]')
    bob_before = {
        k: v for k, v in everything(redis_client, key_prefix, seeded.erasure_audit).items() if story.BOB in k
    }

    resp = await client.delete(f"/api/v1/customers/{story.ALICE_OLD}", headers=AUTH)  # an alias erases all
    assert resp.status == 200, await resp.text()
    report = (await resp.json())["erased"]
    assert report["customer_id"] == story.ALICE
    assert (report["aliases"], report["identifiers"], report["timers"], report["alerts"]) == (1, 3, 3, 2)

    left = everything(redis_client, key_prefix, seeded.erasure_audit)
    for cid in (story.ALICE, story.ALICE_OLD):
        assert [k for k, v in left.items() if cid in k or cid.encode() in v] == []
    for id_key in alice_ids:
        assert id_key is not None
        assert [k for k in left if id_key in k] == []
    assert {k: v for k, v in left.items() if story.BOB in k} == bob_before
    assert redis_client.get(seeded.merge_outcome("b-2")) is not None
    assert set(redis_client.zrange(seeded.timers, 0, -1)) == {f"{story.BOB}|support".encode()}
    assert set(redis_client.zrange(seeded.timers_inflight, 0, -1)) == {f"{story.BOB}|support".encode()}
    assert redis_client.hkeys(seeded.alerts_by_id) != []

    audit = redis_client.xrange(seeded.erasure_audit)
    assert len(audit) == 1
    record = {k.decode(): v.decode() for k, v in audit[0][1].items()}
    assert record["customer_id"] == story.ALICE and int(record["keys"]) > 10
    assert not any(raw in repr(record).lower() for raw in ("alice", "7700", "example.com", "ck_"))

    assert (await client.delete(f"/api/v1/customers/{story.ALICE}", headers=AUTH)).status == 404
    assert (await client.get("/api/v1/journeys/lookup?phone=07700900958", headers=AUTH)).status == 404
    assert (await client.get(f"/api/v1/journeys/lookup?phone={story.BOB_PHONE}", headers=AUTH)).status == 200
    metrics = await (await client.get("/metrics")).text()
    assert "journeys_erasures_total 1.0" in metrics


async def test_an_identifier_relinked_to_someone_else_survives_the_erase(
    client: Client, seeded: Keys, redis_client: Any, service_env: dict[str, str]
) -> None:
    # The stitcher moved Alice's e-mail to Bob between her link set and the erase: not ours to delete.
    email_key = lookup_key(api_settings(service_env), "email", story.ALICE_EMAIL)
    assert email_key is not None
    redis_client.set(seeded.identifier(email_key), story.BOB)
    assert (await client.delete(f"/api/v1/customers/{story.ALICE}", headers=AUTH)).status == 200
    assert redis_client.get(seeded.identifier(email_key)) == story.BOB.encode()
