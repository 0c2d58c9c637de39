"""Every Kafka client the services build carries the TLS/SASL settings, and a refusal reads as one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError
from pydantic import ValidationError

from services.common.kafka_config import (
    client_config,
    consumer_config,
    kafka_python_config,
    producer_config,
    refusal,
)
from services.common.settings import CommonSettings

pytestmark = pytest.mark.unit
PASSWORD = "s3cret-scram-password"


def secured(tmp_path: Path, **extra: Any) -> CommonSettings:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9093,k2:9093",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": "stitcher",
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "KAFKA_SSL_CA_FILE": str(ca),
        **extra,
    }
    return CommonSettings(**env)


def test_every_client_config_carries_sasl_ssl(tmp_path: Path) -> None:
    s = secured(tmp_path)
    want = {
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "stitcher",
        "sasl.password": PASSWORD,
        "ssl.ca.location": str(tmp_path / "ca.pem"),
    }
    for config in (client_config(s), consumer_config(s, "g"), producer_config(s)):
        assert want.items() <= config.items()


def test_plaintext_adds_nothing() -> None:
    s = CommonSettings(KAFKA_SECURITY_PROTOCOL="PLAINTEXT")
    assert not any(k.startswith(("security.", "sasl.", "ssl.")) for k in client_config(s))
    assert kafka_python_config(s) == {"security_protocol": "PLAINTEXT"}


def test_kafka_python_clients_get_the_same_security(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    s = secured(tmp_path, KAFKA_SSL_CERT_FILE=str(cert), KAFKA_SSL_KEY_FILE=str(key))
    assert kafka_python_config(s) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "stitcher",
        "sasl_plain_password": PASSWORD,
        "ssl_cafile": str(tmp_path / "ca.pem"),
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
    }
    assert client_config(s)["ssl.certificate.location"] == str(cert)


def test_sasl_without_credentials_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        secured(tmp_path, KAFKA_SASL_PASSWORD="")


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"KAFKA_SSL_CA_FILE=.*not a readable file"):
        secured(tmp_path, KAFKA_SSL_CA_FILE=str(tmp_path / "nope.pem"))


def test_refusals_are_one_line_without_the_password(tmp_path: Path) -> None:
    s = secured(tmp_path)
    auth = refusal(s, KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error"))
    assert auth is not None and "\n" not in auth and PASSWORD not in auth
    assert "refused the SASL credentials" in auth and "'stitcher'" in auth and "KAFKA_SASL_PASSWORD" in auth
    tls = refusal(s, KafkaError(KafkaError._SSL, "certificate verify failed"))
    assert tls is not None and "KAFKA_SSL_CA_FILE" in tls
    assert refusal(s, KafkaError(KafkaError._TRANSPORT, "down")) is None  # a broker down is retried
