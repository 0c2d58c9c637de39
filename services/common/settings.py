"""Settings shared by every service, read from environment variables (pydantic-settings).

Each service extends ``CommonSettings`` with its own fields. Every field names its environment
variable (``validation_alias``) and carries a description, so ``--help`` and docs/configuration.md are
generated from one place (``env_table``).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.timeutil import parse_duration_ms

DEV_SECRET = "dev-only-insecure-secret"
MIN_SECRET_BYTES = 32  # an HMAC-SHA256 key: shorter than the hash's block of entropy is guessable offline
NO_INSTANCE_ID = "none"
_MEMBER_NAME = re.compile(r"[^A-Za-z0-9._-]")  # what Kafka accepts in a group.instance.id


def env(name: str, description: str, **kw: Any) -> Any:
    """A settings field bound to exactly one environment variable (Any: fields keep their own type)."""
    return Field(validation_alias=AliasChoices(name), description=description, **kw)


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=False, frozen=True)

    kafka_bootstrap_servers: str = env(
        "KAFKA_BOOTSTRAP_SERVERS", "Kafka bootstrap servers, comma separated.", default="127.0.0.1:39092"
    )
    redis_url: str = env(
        "REDIS_URL",
        "Redis URL (redis://host:port/db), or a Redis Cluster's startup nodes "
        "(redis+cluster://host:port,host:port...; rediss+cluster:// for TLS).",
        default="redis://127.0.0.1:36379/0",
    )
    key_prefix: str = env(
        "JOURNEYS_KEY_PREFIX",
        "Prefix of every Redis key, so deployments and tests never collide.",
        default="jr",
    )
    environment: Literal["dev", "prod"] = env(
        "JOURNEYS_ENV",
        "dev or prod. prod refuses to start without strong secrets (docs/security.md).",
        default="dev",
    )
    hmac_secret: SecretStr | None = env(
        "JOURNEYS_HMAC_SECRET",
        f"Secret key for identifier pseudonymisation (HMAC-SHA256); at least {MIN_SECRET_BYTES} bytes "
        "outside dev (openssl rand -hex 32). Empty counts as unset.",
        default=None,
    )
    hmac_previous_secrets: SecretStr | None = env(
        "JOURNEYS_HMAC_PREVIOUS_SECRETS",
        "Comma-separated keys JOURNEYS_HMAC_SECRET replaced: lookups still find customers stitched under "
        "them until `python -m services.api.rekey` has re-keyed the identity graph (docs/security.md).",
        default=None,
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = env(
        "KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (every Kafka client).",
        default="PLAINTEXT",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = env(
        "KAFKA_SASL_MECHANISM",
        "SASL mechanism with SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
        default="SCRAM-SHA-512",
    )
    kafka_sasl_username: str | None = env("KAFKA_SASL_USERNAME", "SASL user name.", default=None)
    kafka_sasl_password: SecretStr | None = env("KAFKA_SASL_PASSWORD", "SASL password.", default=None)
    kafka_ssl_ca_file: str | None = env(
        "KAFKA_SSL_CA_FILE",
        "PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL); unset: the system's CAs.",
        default=None,
    )
    kafka_ssl_cert_file: str | None = env(
        "KAFKA_SSL_CERT_FILE", "PEM client certificate, when the brokers require one (mTLS).", default=None
    )
    kafka_ssl_key_file: str | None = env(
        "KAFKA_SSL_KEY_FILE", "PEM key of KAFKA_SSL_CERT_FILE.", default=None
    )
    redis_ssl_ca_file: str | None = env(
        "REDIS_SSL_CA_FILE",
        "PEM file of the CA that signed Redis's certificate (rediss:// URLs).",
        default=None,
    )
    redis_ssl_cert_file: str | None = env(
        "REDIS_SSL_CERT_FILE",
        "PEM client certificate, when Redis requires one (tls-auth-clients).",
        default=None,
    )
    redis_ssl_key_file: str | None = env(
        "REDIS_SSL_KEY_FILE", "PEM key of REDIS_SSL_CERT_FILE.", default=None
    )
    attributes_allow: str | None = env(
        "JOURNEYS_ATTRIBUTES_ALLOW",
        "Comma-separated attribute names the stitcher forwards; every other attribute is dropped. Unset: "
        "every name (values still scrubbed); empty: none.",
        default=None,
    )
    attributes_scrub: bool = env(
        "JOURNEYS_ATTRIBUTES_SCRUB",
        "Replace e-mail addresses and 9+-digit runs (phone, card numbers) in forwarded attributes by "
        "[redacted] (services/stitcher/core/scrub.py).",
        default=True,
    )
    phone_region: str = env(
        "JOURNEYS_PHONE_REGION",
        "Default region for phone numbers without a country code (ISO 3166).",
        default="GB",
    )
    topic_channel_events: str = env(
        "JOURNEYS_TOPIC_CHANNEL_EVENTS", "Input topic of raw channel events.", default="channel-events"
    )
    topic_dlq: str = env(
        "JOURNEYS_TOPIC_DLQ", "Dead-letter topic for bad channel events.", default="channel-events-dlq"
    )
    topic_stitched_events: str = env(
        "JOURNEYS_TOPIC_STITCHED_EVENTS", "Stitched events, keyed by customer_id.", default="stitched-events"
    )
    topic_identity_merges: str = env(
        "JOURNEYS_TOPIC_IDENTITY_MERGES", "Audit trail of merges and conflicts.", default="identity-merges"
    )
    topic_gap_alerts: str = env("JOURNEYS_TOPIC_GAP_ALERTS", "Gap alerts.", default="gap-alerts")
    topic_partitions: int = env(
        "JOURNEYS_TOPIC_PARTITIONS", "Partitions of topics the services create.", default=4
    )
    log_level: str = env("JOURNEYS_LOG_LEVEL", "Log level (DEBUG, INFO, WARNING, ERROR).", default="INFO")
    retention: str = env(
        "JOURNEYS_RETENTION",
        "Everything kept per customer (journey, identity graph, detector state) lives this long after the "
        "customer's last write, then expires as a whole.",
        default="90d",
    )
    kafka_session_timeout: str = env(
        "JOURNEYS_KAFKA_SESSION_TIMEOUT",
        "How soon a worker that stopped heartbeating (killed, hung) loses its partitions to the others.",
        default="10s",
    )
    instance_id: str | None = env(
        "JOURNEYS_INSTANCE_ID",
        "Static name of this worker in its consumer group: restarted under the same name it gets its "
        "partitions back at once. Unset: host name and metrics port (myhost-9101); none: no static name. "
        "Two running workers of one group must never share one.",
        default=None,
    )
    bind_host: str = env(
        "JOURNEYS_BIND_HOST",
        "Interface every listener binds to (the workers' /metrics, the API); 0.0.0.0 for all of them.",
        default="127.0.0.1",
    )

    @field_validator("retention", "kafka_session_timeout")
    @classmethod
    def _common_duration(cls, value: str) -> str:
        parse_duration_ms(value)
        return value

    @field_validator("instance_id")
    @classmethod
    def _member_name(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 200 or _MEMBER_NAME.search(value)):
            raise ValueError("use at most 200 of A-Z a-z 0-9 . _ - (e.g. stitcher-1)")
        return value

    @field_validator("hmac_secret", "hmac_previous_secrets", "kafka_sasl_password", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `${VAR:-}` in compose or systemd passes an empty string: that is "not set", never the key b''.
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _strong_secrets_outside_dev(self) -> CommonSettings:
        if self.environment != "dev":
            keys = [("JOURNEYS_HMAC_SECRET", self.secret_bytes() if self.hmac_secret else b"")]
            keys += [("JOURNEYS_HMAC_PREVIOUS_SECRETS", k) for k in self.previous_secret_bytes()]
            for name, key in keys:
                if len(key) < MIN_SECRET_BYTES:
                    raise ValueError(
                        f"{name} must be at least {MIN_SECRET_BYTES} bytes when "
                        f"JOURNEYS_ENV={self.environment} (it has {len(key)}); "
                        "make one with `openssl rand -hex 32`"
                    )
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        for name, path in (
            ("KAFKA_SSL_CA_FILE", self.kafka_ssl_ca_file),
            ("KAFKA_SSL_CERT_FILE", self.kafka_ssl_cert_file),
            ("KAFKA_SSL_KEY_FILE", self.kafka_ssl_key_file),
            ("REDIS_SSL_CA_FILE", self.redis_ssl_ca_file),
            ("REDIS_SSL_CERT_FILE", self.redis_ssl_cert_file),
            ("REDIS_SSL_KEY_FILE", self.redis_ssl_key_file),
        ):
            if path and not Path(path).is_file():
                raise ValueError(f"{name}={path} is not a readable file")
        return self

    def secret_bytes(self) -> bytes:
        """The pseudonymisation key; the well-known dev key only in dev mode."""
        if self.hmac_secret is not None:
            return self.hmac_secret.get_secret_value().encode()
        return DEV_SECRET.encode()

    def previous_secret_bytes(self) -> list[bytes]:
        """Keys the current one replaced, newest first: lookups fall back to them during a rotation."""
        if self.hmac_previous_secrets is None:
            return []
        return [
            k.strip().encode() for k in self.hmac_previous_secrets.get_secret_value().split(",") if k.strip()
        ]

    @property
    def retention_ms(self) -> int:
        return parse_duration_ms(self.retention)

    @property
    def session_timeout_s(self) -> float:
        return parse_duration_ms(self.kafka_session_timeout) / 1000

    def group_instance_id(self) -> str | None:
        """This worker's static member name (Kafka's group.instance.id), None for a dynamic member."""
        if self.instance_id is not None:
            return None if self.instance_id.lower() == NO_INSTANCE_ID else self.instance_id
        port = self.instance_port()
        if not port:  # nothing that tells two workers on one host apart
            return None
        return _MEMBER_NAME.sub("_", f"{socket.gethostname()}-{port}")[-200:]

    def instance_port(self) -> int | None:
        """A port only one running worker of this kind binds on a host (its metrics port), which makes
        the default static name unique there and stable across restarts; None: no default name."""
        return None


def probe_host(bind_host: str) -> str:
    """Where a client on this machine reaches a listener bound to ``bind_host`` (a wildcard: loopback)."""
    return "127.0.0.1" if bind_host in ("0.0.0.0", "::", "") else bind_host


def env_table(cls: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """(variable, default, description) for every field of a settings class."""
    rows = []
    for field in cls.model_fields.values():
        alias = field.validation_alias
        name = alias.choices[0] if isinstance(alias, AliasChoices) else str(alias)
        default = "" if field.default is None else str(field.default)
        rows.append((str(name), default, field.description or ""))
    return rows


def env_help(*classes: type[BaseSettings]) -> str:
    """An argparse epilog naming the environment variables a command reads."""
    seen: dict[str, tuple[str, str]] = {}
    for cls in classes:
        for name, default, desc in env_table(cls):
            seen.setdefault(name, (default, desc))
    lines = ["environment variables:"]
    lines += [f"  {n:<34} {d} (default: {dflt or 'unset'})" for n, (dflt, d) in seen.items()]
    return "\n".join(lines)
