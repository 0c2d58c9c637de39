"""Every Redis client made by redis_conn gets the CA and client certificate of REDIS_SSL_* on a TLS URL."""

from __future__ import annotations

import pytest

from services.common.redis_conn import connect_sync, tls_options

pytestmark = pytest.mark.unit
ENV = {
    "REDIS_SSL_CA_FILE": "/etc/ca.pem",
    "REDIS_SSL_CERT_FILE": "/etc/c.pem",
    "REDIS_SSL_KEY_FILE": "/etc/k.pem",
}


@pytest.mark.parametrize("url", ["rediss://u:p@h:6380/0", "rediss+cluster://h1:7000,h2:7000"])
def test_tls_urls_get_the_certificate_files(url: str) -> None:
    assert tls_options(url, ENV) == {
        "ssl_ca_certs": "/etc/ca.pem",
        "ssl_certfile": "/etc/c.pem",
        "ssl_keyfile": "/etc/k.pem",
    }


@pytest.mark.parametrize("url", ["redis://h:6379/0", "redis+cluster://h:7000", "unix:///tmp/r.sock"])
def test_plain_urls_get_none(url: str) -> None:
    assert tls_options(url, ENV) == {}


def test_the_client_is_built_with_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    client = connect_sync("rediss://journeys:pw@127.0.0.1:6380/0")
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_certfile"], kwargs["username"]) == (
        "/etc/ca.pem",
        "/etc/c.pem",
        "journeys",
    )
    client.close()
