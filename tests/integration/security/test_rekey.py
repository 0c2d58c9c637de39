"""HMAC key rotation end to end: a customer stitched under the old key is found through the previous-key
fallback, `python -m services.api.rekey` moves its identifiers to the new key (same customer, same expiry,
atomic per identifier, safe to repeat), and afterwards the API finds it with the new key alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from services.api.rekey import rekey
from services.common.keys import Keys
from services.common.redis_conn import connect_sync
from services.stitcher.core.identifiers import id_key, normalise
from tests.integration.api import story
from tests.integration.api.journey_seed import seed
from tests.integration.security.test_api_roles_audit import AGENT, NEW_KEY, OLD_KEY, auth, settings_of

pytestmark = pytest.mark.integration
LOOKUPS = ("email=alice.smith%40example.com", "phone=%2B447700900958", f"cookie_id={story.ALICE_COOKIE}")


def run_rekey(service_env: dict[str, str], files: list[Path]) -> str:
    env = {**service_env, "JOURNEYS_HMAC_SECRET": NEW_KEY, "JOURNEYS_HMAC_PREVIOUS_SECRETS": OLD_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "services.api.rekey", *map(str, files)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def statuses(service_env: dict[str, str], **extra: str) -> list[int]:
    async with TestClient(TestServer(create_app(settings_of(service_env, **extra)))) as c:
        return [(await c.get(f"/api/v1/journeys/lookup?{q}", headers=auth(AGENT))).status for q in LOOKUPS]


async def test_rekey_moves_the_identity_graph_to_the_new_key(
    redis_client: Any, key_prefix: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    keys = Keys(key_prefix)
    old_settings = settings_of(service_env, JOURNEYS_HMAC_SECRET=OLD_KEY)
    seed(redis_client, keys, old_settings, [story.alice(), story.alice_old(), story.bob()])
    old_email = id_key(OLD_KEY.encode(), "email", "alice.smith@example.com")
    redis_client.pexpire(keys.identifier(old_email), 3_600_000)
    assert await statuses(service_env) == [404, 404, 404]  # the new key alone: stitched under the old one
    assert await statuses(service_env, JOURNEYS_HMAC_PREVIOUS_SECRETS=OLD_KEY) == [200, 200, 200]

    events = tmp_path / "channel-events.jsonl"
    events.write_bytes(
        b"\n".join(
            [
                orjson.dumps(
                    {"event_id": "x", "identifiers": {"email": story.ALICE_EMAIL, "phone": story.ALICE_PHONE}}
                ),
                orjson.dumps({"type": "cookie_id", "value": story.ALICE_COOKIE}),
                orjson.dumps({"type": "email", "value": "nobody.known@example.com"}),
                b"not json",
            ]
        )
    )
    assert (
        run_rekey(service_env, [events])
        == "rekey: 4 identifiers read, 3 moved to the new key, 1 under no old key"
    )
    assert await statuses(service_env) == [200, 200, 200]  # no previous key needed any more

    new_email = id_key(NEW_KEY.encode(), "email", "alice.smith@example.com")
    assert redis_client.get(keys.identifier(old_email)) is None
    assert redis_client.get(keys.identifier(new_email)) == story.ALICE.encode()
    assert 3_000_000 < redis_client.pttl(keys.identifier(new_email)) <= 3_600_000  # the expiry travels
    phone = normalise("phone", story.ALICE_PHONE, phone_region="GB")
    assert phone is not None
    members = redis_client.smembers(keys.customer_ids(story.ALICE))
    assert new_email.encode() in members and id_key(NEW_KEY.encode(), "phone", phone).encode() in members
    assert old_email.encode() not in members
    assert (
        run_rekey(service_env, [events])
        == "rekey: 4 identifiers read, 0 moved to the new key, 4 under no old key"
    )  # safe to repeat


def test_rekey_moves_an_identifier_on_a_cluster(
    redis_cluster: str, key_prefix: str, service_env: dict[str, str]
) -> None:
    """The move script runs in Redis 7's strict mode (its keys in KEYS, one slot: the identity graph's)."""
    client, keys = connect_sync(redis_cluster), Keys(key_prefix)
    settings = settings_of(service_env, REDIS_URL=redis_cluster, JOURNEYS_HMAC_PREVIOUS_SECRETS=OLD_KEY)
    old = id_key(OLD_KEY.encode(), "email", "alice.smith@example.com")
    new = id_key(NEW_KEY.encode(), "email", "alice.smith@example.com")
    client.set(keys.identifier(old), story.ALICE)
    client.sadd(keys.customer_ids(story.ALICE), old)
    try:
        assert rekey(client, keys, settings, [("email", story.ALICE_EMAIL)]).moved == 1
        assert client.get(keys.identifier(new)) == story.ALICE.encode()
        assert client.get(keys.identifier(old)) is None
        assert client.smembers(keys.customer_ids(story.ALICE)) == {new.encode()}
        assert rekey(client, keys, settings, [("email", story.ALICE_EMAIL)]).moved == 0  # safe to repeat
    finally:
        client.delete(keys.identifier(new), keys.customer_ids(story.ALICE))
        client.close()
