"""Auth, health and garbage: 400 with a reason, 401, 404, 503 — never a 500."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from tests.integration.api.conftest import AUTH, api_settings

pytestmark = pytest.mark.integration
Client = TestClient[Any, Any]

GARBAGE = [
    ("GET", "/api/v1/journeys/lookup"),
    ("GET", "/api/v1/journeys/lookup?phone="),
    ("GET", "/api/v1/journeys/lookup?phone=%20%20"),
    ("GET", "/api/v1/journeys/lookup?phone=not-a-number"),
    ("GET", "/api/v1/journeys/lookup?phone=123&email=a%40b.com"),
    ("GET", "/api/v1/journeys/lookup?phone=1&phone=2"),
    ("GET", "/api/v1/journeys/lookup?ssn=123"),
    ("GET", "/api/v1/journeys/lookup?social_handle=%40bob"),
    ("GET", "/api/v1/journeys/lookup?email=" + "x" * 300),
    ("GET", "/api/v1/journeys/lookup?email=noreply%40example.com"),
    ("GET", "/api/v1/journeys/lookup?email=%FF%FE%00"),
    ("GET", "/api/v1/journeys/lookup?phone=%E2%98%8E%F0%9F%98%80"),
    ("GET", "/api/v1/journeys/lookup?email=%25%25%25"),
    ("GET", "/api/v1/journeys/lookup?customer_id=%00"),
    ("GET", "/api/v1/journeys/C_ABC"),
    ("GET", "/api/v1/journeys/..%2F..%2Fetc%2Fpasswd"),
    ("GET", "/api/v1/journeys/c_" + "f" * 200),
    ("GET", "/api/v1/alerts?type=bogus"),
    ("GET", "/api/v1/alerts?type="),
    ("GET", "/api/v1/alerts?since=yesterday"),
    ("GET", "/api/v1/alerts?since=2026-11-02T10:00:00"),
    ("GET", "/api/v1/alerts?since=2026-13-45T99:00:00Z"),
    ("GET", "/api/v1/alerts?since=2026-11-03T00:00:00Z&until=2026-11-02T00:00:00Z"),
    ("GET", "/api/v1/alerts?limit=0"),
    ("GET", "/api/v1/alerts?limit=-5"),
    ("GET", "/api/v1/alerts?limit=99999999999999999999"),
    ("GET", "/api/v1/alerts?customer_id=bob"),
    ("GET", "/api/v1/alerts?until=9999999999999999999999"),
    ("GET", "/api/v1/alerts?color=red"),
    ("DELETE", "/api/v1/customers/robert'); DROP TABLE--"),
    ("DELETE", "/api/v1/customers/c_0000000000000000"),
    ("GET", "/api/v1/nothing-here"),
    ("POST", "/api/v1/journeys/lookup?phone=1"),
    ("PUT", "/api/v1/alerts"),
]


@pytest.mark.parametrize(("method", "url"), GARBAGE)
async def test_garbage_gets_a_4xx_with_a_reason_never_a_500(
    client: Client, seeded: object, method: str, url: str
) -> None:
    resp = await client.request(method, url, headers=AUTH)
    body = orjson.loads(await resp.read())
    assert 400 <= resp.status < 500, (resp.status, body)
    assert body["error"]["status"] == resp.status and body["error"]["reason"]


async def test_a_bad_value_is_never_echoed(client: Client, seeded: object) -> None:
    resp = await client.get("/api/v1/journeys/lookup?phone=call-me-at-555-0199-please", headers=AUTH)
    assert resp.status == 400
    assert "555" not in (await resp.text())


BAD_AUTH = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": "Basic dGVzdA=="},
    {"Authorization": "Bearer"},
    {"Authorization": "test-token"},
]


@pytest.mark.parametrize("headers", BAD_AUTH)
async def test_api_calls_need_the_bearer_token(
    client: Client,
    seeded: object,
    headers: dict[str, str],
) -> None:
    for method, url in [
        ("GET", "/api/v1/journeys/lookup?phone=07700900958"),
        ("GET", "/api/v1/alerts"),
        ("DELETE", "/api/v1/customers/c_5e1f0a2b3c4d5e6f"),
        ("GET", "/api/v1/nothing"),
    ]:
        resp = await client.request(method, url, headers=headers)
        assert resp.status == 401, url
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_health_metrics_and_the_agent_shell_are_open(client: Client) -> None:
    for url in ("/healthz", "/readyz", "/agent", "/metrics", "/agent/static/agent.js"):
        resp = await client.get(url)
        assert resp.status == 200, url


async def test_without_redis_readyz_and_lookups_answer_503(service_env: dict[str, str]) -> None:
    settings = api_settings(service_env, REDIS_URL="redis://127.0.0.1:1/0", JOURNEYS_API_REDIS_RETRIES="1")
    async with TestClient(TestServer(create_app(settings))) as c:
        assert (await c.get("/healthz")).status == 200
        assert (await c.get("/readyz")).status == 503
        for url in ("/api/v1/journeys/lookup?phone=07700900958", "/api/v1/alerts"):
            resp = await c.get(url, headers=AUTH)
            assert resp.status == 503
            assert "retry" in (await resp.json())["error"]["reason"]
        metrics = await (await c.get("/metrics")).text()
    assert 'journeys_retries_total{target="redis"} 2.0' in metrics


async def test_prod_metrics_can_require_the_token(service_env: dict[str, str]) -> None:
    settings = api_settings(service_env, JOURNEYS_API_PROTECT_METRICS="true")
    async with TestClient(TestServer(create_app(settings))) as c:
        assert (await c.get("/metrics")).status == 401
        assert (await c.get("/metrics", headers=AUTH)).status == 200
