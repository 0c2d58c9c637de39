"""The API in prod mode over the real Redis: hashed tokens with roles (an agent may read, never erase),
the access audit (who, when, route, pseudonymous customer id; never the identifier), an audit that
cannot be written withholds the data, and lookups find customers stitched under the previous HMAC key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from services.api.audit import access_audit
from services.api.auth import token_hash
from services.api.settings import ApiSettings
from services.common.keys import Keys
from tests.integration.api import story
from tests.integration.api.journey_seed import add_recent_alerts, seed

pytestmark = pytest.mark.integration
Client = TestClient[Any, Any]
OLD_KEY, NEW_KEY = "old-hmac-key-".ljust(40, "o"), "new-hmac-key-".ljust(40, "n")
AGENT, ADMIN = "agent-token-for-tests-0123456789", "admin-token-for-tests-0123456789"
TOKENS = f"ana.agent:agent:{token_hash(AGENT)},root:admin:{token_hash(ADMIN)}"
EMAIL_QUERY = "email=alice.smith%40example.com"


def settings_of(service_env: dict[str, str], **extra: str) -> ApiSettings:
    env = {k: v for k, v in service_env.items() if k.startswith(("JOURNEYS_", "REDIS_", "KAFKA_"))}
    env.pop("JOURNEYS_API_TOKEN", None)
    return ApiSettings.model_validate(
        {
            **env,
            "JOURNEYS_ENV": "prod",
            "JOURNEYS_HMAC_SECRET": NEW_KEY,
            "JOURNEYS_API_TOKENS": TOKENS,
            **extra,
        }
    )


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def seeded(redis_client: Any, key_prefix: str, service_env: dict[str, str]) -> Keys:
    keys = Keys(key_prefix)
    seed(redis_client, keys, settings_of(service_env), [story.alice(), story.alice_old(), story.bob()])
    add_recent_alerts(redis_client, keys, story.ALL_ALERTS)
    return keys


@pytest.fixture
async def client(service_env: dict[str, str]) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(settings_of(service_env)))) as c:
        yield c


async def test_an_agent_reads_but_may_not_erase(client: Client, seeded: Keys, redis_client: Any) -> None:
    assert (await client.get(f"/api/v1/journeys/lookup?{EMAIL_QUERY}", headers=auth(AGENT))).status == 200
    assert (await client.get("/api/v1/alerts", headers=auth(AGENT))).status == 200
    denied = await client.delete(f"/api/v1/customers/{story.ALICE}", headers=auth(AGENT))
    assert denied.status == 403
    assert (await client.get(f"/api/v1/journeys/{story.ALICE}", headers=auth(AGENT))).status == 200
    erased = await client.delete(f"/api/v1/customers/{story.ALICE}", headers=auth(ADMIN))
    assert erased.status == 200


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer dev-token", f"Bearer {token_hash(AGENT)}"])
async def test_no_token_a_bare_bearer_or_the_dev_token_is_401(
    client: Client, seeded: Keys, header: str
) -> None:
    for method, url in (("GET", "/api/v1/alerts"), ("DELETE", f"/api/v1/customers/{story.ALICE}")):
        resp = await client.request(method, url, headers={"Authorization": header})
        assert resp.status == 401, (method, header)


async def test_every_lookup_and_erase_is_audited_without_the_identifier(
    client: Client, seeded: Keys, redis_client: Any
) -> None:
    await client.get(f"/api/v1/journeys/lookup?{EMAIL_QUERY}", headers=auth(AGENT))
    await client.get("/api/v1/journeys/lookup?phone=%2B447700900958", headers=auth(AGENT))
    await client.delete(f"/api/v1/customers/{story.ALICE}", headers=auth(AGENT))
    await client.delete(f"/api/v1/customers/{story.ALICE}", headers=auth(ADMIN))
    entries = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in redis_client.xrange(access_audit(seeded))
    ]
    got = [
        (e["who"], e["role"], e["method"], e["route"], e["status"], e["customer_id"], e["by"])
        for e in entries
    ]
    assert got == [
        ("ana.agent", "agent", "GET", "/api/v1/journeys/lookup", "200", story.ALICE, "email"),
        ("ana.agent", "agent", "GET", "/api/v1/journeys/lookup", "200", story.ALICE, "phone"),
        ("ana.agent", "agent", "DELETE", "/api/v1/customers/{customer_id}", "403", story.ALICE, ""),
        ("root", "admin", "DELETE", "/api/v1/customers/{customer_id}", "200", story.ALICE, ""),
    ]
    assert all(e["at"].endswith("Z") for e in entries)
    dump = orjson.dumps(entries).decode().lower()
    for raw in ("alice.smith", "example.com", "7700900958", "+44", AGENT.lower()):
        assert raw not in dump


async def test_a_lookup_whose_audit_cannot_be_written_returns_no_data(
    client: Client, seeded: Keys, redis_client: Any
) -> None:
    redis_client.set(access_audit(seeded), "not a stream")  # XADD now fails (WRONGTYPE)
    resp = await client.get(f"/api/v1/journeys/lookup?{EMAIL_QUERY}", headers=auth(AGENT))
    body = await resp.read()
    assert resp.status == 503 and story.ALICE.encode() not in body


async def test_lookups_find_customers_stitched_under_the_previous_key(
    redis_client: Any, key_prefix: str, service_env: dict[str, str]
) -> None:
    keys = Keys(key_prefix)
    seed(redis_client, keys, settings_of(service_env, JOURNEYS_HMAC_SECRET=OLD_KEY), [story.alice()])
    url = f"/api/v1/journeys/lookup?{EMAIL_QUERY}"
    rotated = settings_of(service_env, JOURNEYS_HMAC_PREVIOUS_SECRETS=OLD_KEY)
    async with TestClient(TestServer(create_app(rotated))) as c:
        resp = await c.get(url, headers=auth(AGENT))
        assert resp.status == 200 and orjson.loads(await resp.read())["customer_id"] == story.ALICE
    async with TestClient(TestServer(create_app(settings_of(service_env)))) as c:  # the old key forgotten
        assert (await c.get(url, headers=auth(AGENT))).status == 404
