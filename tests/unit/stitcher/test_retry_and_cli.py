"""Transient faults are retried (not dead-lettered); bad settings are one clear line."""

from __future__ import annotations

import pytest
import redis.exceptions

from services.common.errors import UserError
from services.stitcher.adapters.retry import with_retry
from services.stitcher.cli import load_settings
from services.stitcher.metrics import RETRIES

pytestmark = pytest.mark.unit


async def test_transient_redis_errors_are_retried_with_backoff() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise redis.exceptions.ConnectionError("down")
        return "ok"

    before = RETRIES.labels(target="redis")._value.get()
    assert await with_retry(flaky, "redis", first_delay=0.001) == "ok"
    assert len(calls) == 3
    assert RETRIES.labels(target="redis")._value.get() - before == 2


async def test_other_errors_are_not_retried() -> None:
    async def broken() -> None:
        raise redis.exceptions.ResponseError("script bug")

    with pytest.raises(redis.exceptions.ResponseError):
        await with_retry(broken, "redis", first_delay=0.001)


def test_prod_without_a_secret_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_ENV", "prod")
    monkeypatch.delenv("JOURNEYS_HMAC_SECRET", raising=False)
    with pytest.raises(UserError, match="JOURNEYS_HMAC_SECRET"):
        load_settings()


def test_a_bad_duration_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_RETENTION", "forever")
    with pytest.raises(UserError, match="not a duration"):
        load_settings()
