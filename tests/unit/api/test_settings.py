from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.api.settings import DEV_API_TOKEN, ApiSettings

pytestmark = pytest.mark.unit


def test_dev_has_the_documented_token_and_defaults() -> None:
    s = ApiSettings.model_validate({"JOURNEYS_ENV": "dev"})
    assert (s.token(), s.listen_host, s.api_port) == (DEV_API_TOKEN, "127.0.0.1", 8088)


def test_the_api_binds_to_the_shared_bind_host_unless_told_otherwise() -> None:
    assert ApiSettings.model_validate({"JOURNEYS_BIND_HOST": "0.0.0.0"}).listen_host == "0.0.0.0"
    both = {"JOURNEYS_BIND_HOST": "0.0.0.0", "JOURNEYS_API_HOST": "10.1.2.3"}
    assert ApiSettings.model_validate(both).listen_host == "10.1.2.3"


def test_prod_refuses_to_start_without_a_token() -> None:
    strong = {"JOURNEYS_ENV": "prod", "JOURNEYS_HMAC_SECRET": "s" * 32}
    with pytest.raises(ValidationError, match="JOURNEYS_API_TOKEN"):
        ApiSettings.model_validate(strong)
    assert ApiSettings.model_validate({**strong, "JOURNEYS_API_TOKEN": "t" * 24}).token() == "t" * 24
