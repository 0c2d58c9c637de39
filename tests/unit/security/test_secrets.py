"""Outside dev, secrets must be strong, not merely set; in dev an empty one means 'unset', never b''."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.settings import DEV_SECRET, CommonSettings

pytestmark = pytest.mark.unit
STRONG = "k" * 32


@pytest.mark.parametrize("secret", ["", "   ", "short", "k" * 31])
def test_prod_refuses_an_empty_or_short_hmac_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="JOURNEYS_HMAC_SECRET must be at least 32 bytes"):
        CommonSettings(JOURNEYS_ENV="prod", JOURNEYS_HMAC_SECRET=secret)


def test_prod_refuses_a_missing_hmac_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNEYS_HMAC_SECRET", raising=False)
    with pytest.raises(ValidationError, match=r"JOURNEYS_HMAC_SECRET .*it has 0"):
        CommonSettings(JOURNEYS_ENV="prod")


def test_prod_accepts_32_bytes_and_uses_them() -> None:
    assert CommonSettings(JOURNEYS_ENV="prod", JOURNEYS_HMAC_SECRET=STRONG).secret_bytes() == STRONG.encode()


def test_prod_refuses_a_short_previous_key() -> None:
    with pytest.raises(ValidationError, match="JOURNEYS_HMAC_PREVIOUS_SECRETS must be at least 32"):
        CommonSettings(
            JOURNEYS_ENV="prod", JOURNEYS_HMAC_SECRET=STRONG, JOURNEYS_HMAC_PREVIOUS_SECRETS=f"{'o' * 32},old"
        )


def test_dev_reads_an_empty_secret_as_unset_not_as_the_empty_key() -> None:
    s = CommonSettings(JOURNEYS_ENV="dev", JOURNEYS_HMAC_SECRET="")
    assert s.secret_bytes() == DEV_SECRET.encode()


def test_previous_keys_newest_first() -> None:
    s = CommonSettings(
        JOURNEYS_HMAC_SECRET=STRONG, JOURNEYS_HMAC_PREVIOUS_SECRETS=f" {'a' * 32} ,{'b' * 32},"
    )
    assert s.previous_secret_bytes() == [b"a" * 32, b"b" * 32]
