from __future__ import annotations

import pytest

from services.api.cli import load_settings
from services.cli.main import build_parser
from services.common.errors import UserError

pytestmark = pytest.mark.unit


def test_help_names_every_api_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["api", "--help"])
    out = capsys.readouterr().out
    for name in (
        "JOURNEYS_API_HOST",
        "JOURNEYS_API_PORT",
        "JOURNEYS_API_TOKEN",
        "REDIS_URL",
        "JOURNEYS_KEY_PREFIX",
        "JOURNEYS_API_MAX_TOUCHPOINTS",
    ):
        assert name in out


def test_a_bad_setting_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_API_PORT", "eighty")
    with pytest.raises(UserError, match=r"^JOURNEYS_API_PORT: ") as exc:
        load_settings()
    assert "\n" not in str(exc.value)


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_API_PORT", "9999")
    assert load_settings(port=1234).api_port == 1234
    assert load_settings().api_port == 9999
