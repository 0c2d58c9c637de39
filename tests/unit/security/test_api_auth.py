"""API tokens: configured as hashes with a name and a role; empty or short tokens never pass outside dev."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.api.auth import Caller, bearer, needed_role, parse_tokens, token_hash
from services.api.settings import DEV_API_TOKEN, ApiSettings

pytestmark = pytest.mark.unit
STRONG_HMAC = "h" * 32
AGENT_TOKEN, ADMIN_TOKEN = "agent-token-0123456789abcdef", "admin-token-0123456789abcdef"
TOKENS = f"ana:agent:{token_hash(AGENT_TOKEN)},root:admin:{token_hash(ADMIN_TOKEN)}"


def prod(**env: str) -> ApiSettings:
    return ApiSettings.model_validate({"JOURNEYS_ENV": "prod", "JOURNEYS_HMAC_SECRET": STRONG_HMAC, **env})


def test_tokens_resolve_to_their_name_and_role_and_nothing_else_does() -> None:
    table = prod(JOURNEYS_API_TOKENS=TOKENS).token_table()
    assert table.caller(AGENT_TOKEN) == Caller("ana", "agent")
    assert table.caller(ADMIN_TOKEN) == Caller("root", "admin")
    for wrong in ("", None, DEV_API_TOKEN, token_hash(AGENT_TOKEN), AGENT_TOKEN + "x"):
        assert table.caller(wrong) is None  # the configured hash itself is not a token either


def test_only_the_hash_is_held() -> None:
    settings = prod(JOURNEYS_API_TOKENS=TOKENS)
    assert AGENT_TOKEN not in repr(settings) and AGENT_TOKEN not in settings.model_dump_json()


def test_agent_reads_admin_changes() -> None:
    agent, admin = Caller("a", "agent"), Caller("b", "admin")
    assert agent.may(needed_role("GET")) and not agent.may(needed_role("DELETE"))
    assert not agent.may(needed_role("POST")) and admin.may(needed_role("DELETE"))


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer    ", "Basic abc", "", "bearer"])
def test_a_bare_or_foreign_authorization_header_carries_no_token(header: str) -> None:
    assert bearer(header) is None


@pytest.mark.parametrize(
    "env", [{}, {"JOURNEYS_API_TOKEN": ""}, {"JOURNEYS_API_TOKEN": "  "}, {"JOURNEYS_API_TOKENS": ""}]
)
def test_prod_refuses_to_start_without_a_token(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JOURNEYS_API_TOKEN", "JOURNEYS_API_TOKENS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match=r"JOURNEYS_API_TOKENS \(or JOURNEYS_API_TOKEN\) must be set"):
        prod(**env)


def test_prod_refuses_a_short_token() -> None:
    with pytest.raises(ValidationError, match="JOURNEYS_API_TOKEN must be at least 24 characters"):
        prod(JOURNEYS_API_TOKEN="t" * 23)
    assert prod(JOURNEYS_API_TOKEN="t" * 24).token_table().caller("t" * 24) == Caller("token", "admin")


@pytest.mark.parametrize(
    "text, reason",
    [
        ("ana:agent", "name:role:sha256hex"),
        (f"ana:boss:{'0' * 64}", "role must be one of agent, admin"),
        ("ana:agent:abc", "64 hex digits"),
        (f"ana:agent:{'0' * 64},ana:admin:{'1' * 64}", "used twice"),
        (f"a b:agent:{'0' * 64}", "a name of"),
    ],
)
def test_bad_token_entries_are_named(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_tokens(text)


def test_dev_keeps_the_documented_token_unless_tokens_are_configured() -> None:
    dev = ApiSettings.model_validate({"JOURNEYS_ENV": "dev", "JOURNEYS_API_TOKEN": ""})
    assert dev.token_table().caller(DEV_API_TOKEN) == Caller("dev", "admin")
    configured = ApiSettings.model_validate({"JOURNEYS_ENV": "dev", "JOURNEYS_API_TOKENS": TOKENS})
    assert configured.token_table().caller(DEV_API_TOKEN) is None


def test_a_new_token_matches_its_entry_and_only_the_entry_is_configured() -> None:
    from services.api.tokens import new_entry

    token, entry = new_entry("desk-7", "agent")
    assert len(token) >= 24 and token not in entry
    assert prod(JOURNEYS_API_TOKENS=entry).token_table().caller(token) == Caller("desk-7", "agent")
