"""Settings of the HTTP API (``journeys api``), read from environment variables."""

from __future__ import annotations

from pydantic import SecretStr, model_validator

from services.common.settings import CommonSettings, env

DEV_API_TOKEN = "dev-token"  # documented; only ever accepted when JOURNEYS_ENV=dev


class ApiSettings(CommonSettings):
    api_host: str = env("JOURNEYS_API_HOST", "Address the HTTP API binds to (default: JOURNEYS_BIND_HOST).",
                        default="")
    api_port: int = env("JOURNEYS_API_PORT", "Port of the HTTP API, the agent page and its /metrics.",
                        default=8088)
    api_token: SecretStr | None = env(
        "JOURNEYS_API_TOKEN",
        f"Bearer token for /api/v1/*. Required when JOURNEYS_ENV=prod; dev defaults to '{DEV_API_TOKEN}'.",
        default=None,
    )
    api_protect_metrics: bool = env(
        "JOURNEYS_API_PROTECT_METRICS", "Require the bearer token on /metrics too (it never holds PII).",
        default=False,
    )
    api_max_touchpoints: int = env(
        "JOURNEYS_API_MAX_TOUCHPOINTS", "Most recent touchpoints returned per journey.", default=500
    )
    api_alerts_limit: int = env(
        "JOURNEYS_API_ALERTS_LIMIT", "Alerts GET /api/v1/alerts returns by default (limit= up to 1000).",
        default=100,
    )
    api_alerts_scan: int = env(
        "JOURNEYS_API_ALERTS_SCAN", "Most recent alerts scanned per GET /api/v1/alerts before filtering.",
        default=5000,
    )
    api_redis_timeout_s: float = env(
        "JOURNEYS_API_REDIS_TIMEOUT", "Seconds a Redis call may take before it is retried.", default=2.0
    )
    api_redis_retries: int = env(
        "JOURNEYS_API_REDIS_RETRIES", "Retries (with backoff) of a failed Redis call before answering 503.",
        default=2,
    )

    @model_validator(mode="after")
    def _token_required_outside_dev(self) -> ApiSettings:
        if self.environment != "dev" and self.api_token is None:
            raise ValueError("JOURNEYS_API_TOKEN must be set when JOURNEYS_ENV is not 'dev'")
        return self

    @property
    def listen_host(self) -> str:
        return self.api_host or self.bind_host

    def token(self) -> str:
        """The bearer token clients must send; the documented dev token only in dev mode."""
        if self.api_token is not None:
            return self.api_token.get_secret_value()
        return DEV_API_TOKEN
