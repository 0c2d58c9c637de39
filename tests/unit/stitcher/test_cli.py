"""Bad settings are one clear line (retries are the Kafka loop's: tests/unit/common)."""

from __future__ import annotations

import pytest

from services.common.errors import UserError
from services.stitcher.cli import load_settings

pytestmark = pytest.mark.unit


def test_prod_without_a_secret_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_ENV", "prod")
    monkeypatch.delenv("JOURNEYS_HMAC_SECRET", raising=False)
    with pytest.raises(UserError, match="JOURNEYS_HMAC_SECRET"):
        load_settings()


def test_a_bad_duration_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_RETENTION", "forever")
    with pytest.raises(UserError, match="not a duration"):
        load_settings()
