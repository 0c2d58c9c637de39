"""Settings of the HTTP API (``journeys api``), read from environment variables."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr, field_validator, model_validator

from services.api.auth import MIN_TOKEN_CHARS, Caller, TokenTable, parse_tokens, token_hash
from services.common.settings import CommonSettings, env

DEV_API_TOKEN = "dev-token"  # documented; only ever accepted when JOURNEYS_ENV=dev


class ApiSettings(CommonSettings):
    api_host: str = env(
        "JOURNEYS_API_HOST", "Address the HTTP API binds to (default: JOURNEYS_BIND_HOST).", default=""
    )
    api_port: int = env(
        "JOURNEYS_API_PORT", "Port of the HTTP API, the agent page and its /metrics.", default=8088
    )
    api_token: SecretStr | None = env(
        "JOURNEYS_API_TOKEN",
        f"One bearer token with the admin role (name 'token' in the audit trail); at least {MIN_TOKEN_CHARS} "
        f"characters outside dev. Prefer JOURNEYS_API_TOKENS. Dev without either: '{DEV_API_TOKEN}'.",
        default=None,
    )
    api_tokens: str | None = env(
        "JOURNEYS_API_TOKENS",
        "Bearer tokens as name:role:sha256hex,... (role agent or admin; hashes only, never the tokens: "
        "`python -m services.api.tokens NAME ROLE` makes one). docs/security.md.",
        default=None,
    )
    api_audit_maxlen: int = env(
        "JOURNEYS_API_AUDIT_MAXLEN",
        "Entries kept in the access audit stream (<prefix>:audit:access, trimmed approximately); ship them "
        "elsewhere before they age out.",
        default=1_000_000,
    )
    api_protect_metrics: bool = env(
        "JOURNEYS_API_PROTECT_METRICS",
        "Require the bearer token on /metrics too (it never holds PII).",
        default=False,
    )
    api_max_touchpoints: int = env(
        "JOURNEYS_API_MAX_TOUCHPOINTS", "Most recent touchpoints returned per journey.", default=500
    )
    api_alerts_limit: int = env(
        "JOURNEYS_API_ALERTS_LIMIT",
        "Alerts GET /api/v1/alerts returns by default (limit= up to 1000).",
        default=100,
    )
    api_alerts_scan: int = env(
        "JOURNEYS_API_ALERTS_SCAN",
        "Most recent alerts scanned per GET /api/v1/alerts before filtering.",
        default=5000,
    )
    api_live_poll_s: float = env(
        "JOURNEYS_API_LIVE_POLL",
        "Seconds between the live agent page's change probes of the customer on screen (one script call).",
        default=0.5,
    )
    definitions: str | None = env(
        "JOURNEYS_DEFINITIONS",
        "Journey definitions file (YAML/JSON); unset: the bundled defaults.",
        default=None,
    )
    api_redis_timeout_s: float = env(
        "JOURNEYS_API_REDIS_TIMEOUT", "Seconds a Redis call may take before it is retried.", default=2.0
    )
    api_redis_retries: int = env(
        "JOURNEYS_API_REDIS_RETRIES",
        "Retries (with backoff) of a failed Redis call before answering 503.",
        default=2,
    )

    @field_validator("api_token", "api_tokens", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: Any) -> Any:
        # `${JOURNEYS_API_TOKEN:-}` passes "": that must never become a token a bare "Bearer" matches.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_tokens")
    @classmethod
    def _tokens_parse(cls, value: str | None) -> str | None:
        if value is not None:
            parse_tokens(value)
        return value

    @model_validator(mode="after")
    def _tokens_required_outside_dev(self) -> ApiSettings:
        if self.environment == "dev":
            return self
        if self.api_token is None and self.api_tokens is None:
            raise ValueError(
                f"JOURNEYS_API_TOKENS (or JOURNEYS_API_TOKEN) must be set when "
                f"JOURNEYS_ENV={self.environment}"
            )
        if self.api_token is not None and len(self.api_token.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"JOURNEYS_API_TOKEN must be at least {MIN_TOKEN_CHARS} characters when "
                f"JOURNEYS_ENV={self.environment}; make one with `openssl rand -hex 24`"
            )
        return self

    @property
    def listen_host(self) -> str:
        return self.api_host or self.bind_host

    def token(self) -> str:
        """The single admin token (JOURNEYS_API_TOKEN); the documented dev token only in dev mode."""
        if self.api_token is not None:
            return self.api_token.get_secret_value()
        return DEV_API_TOKEN

    def token_table(self) -> TokenTable:
        """Every accepted token's hash -> its caller. Dev without any token configured: the dev token."""
        table = parse_tokens(self.api_tokens) if self.api_tokens else {}
        if self.api_token is not None or not table:
            name = "token" if self.api_token is not None else "dev"
            table[token_hash(self.token())] = Caller(name, "admin")
        return TokenTable(table)
