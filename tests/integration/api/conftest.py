"""An in-process API (aiohttp test server) over the real Redis, seeded with the story's customers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from services.api.settings import ApiSettings
from services.common.keys import Keys
from tests.integration.api import story
from tests.integration.api.journey_seed import add_recent_alerts, seed

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def api_settings(service_env: dict[str, str], **extra: str) -> ApiSettings:
    env = {k: v for k, v in service_env.items() if k.startswith(("JOURNEYS_", "REDIS_", "KAFKA_"))}
    return ApiSettings.model_validate({**env, "JOURNEYS_API_TOKEN": TOKEN, **extra})


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
def seeded(redis_client: Any, keys: Keys, service_env: dict[str, str]) -> Keys:
    settings = api_settings(service_env)
    seed(redis_client, keys, settings, [story.alice(), story.alice_old(), story.bob()])
    add_recent_alerts(redis_client, keys, story.ALL_ALERTS)
    redis_client.zadd(
        keys.timers,
        {f"{story.ALICE}|purchase": 1, f"{story.ALICE_OLD}|onboarding": 2, f"{story.BOB}|support": 3},
    )
    return keys


@pytest.fixture
async def client(service_env: dict[str, str]) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(api_settings(service_env)))) as c:
        yield c
