"""A private redis-server that speaks TLS only (certificates from tests/integration/security/certs.py),
with the default user off, an admin user for the test's own checks and the services' ACL user."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port, poll, stop_process
from tests.integration.security.certs import Certs, make_certs

ADMIN_PASSWORD = "admin-pass-for-tests-0123456789"
SERVICE_USER, SERVICE_PASSWORD = "journeys", "journeys-pass-for-tests-0123456789"


@dataclass(frozen=True)
class SecureRedis:
    port: int
    certs: Certs

    def url(self, user: str = SERVICE_USER, password: str = SERVICE_PASSWORD) -> str:
        return f"rediss://{user}:{password}@127.0.0.1:{self.port}/0"

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.url(), "REDIS_SSL_CA_FILE": str(self.certs.ca)}


@contextmanager
def secure_redis(root: Path, service_acl: str) -> Iterator[SecureRedis]:
    """``service_acl``: the rules after ``user journeys on >password`` (key patterns and commands)."""
    server = shutil.which("redis-server")
    assert server is not None, "redis-server is not installed"
    certs = make_certs(root / "certs", "redis")
    port = free_port()
    conf = root / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "port 0",
                f"tls-port {port}",
                "bind 127.0.0.1",
                f"tls-cert-file {certs.cert}",
                f"tls-key-file {certs.key}",
                f"tls-ca-cert-file {certs.ca}",
                "tls-auth-clients no",
                'save ""',
                "appendonly no",
                f"dir {root}",
                "user default off",
                f"user admin on >{ADMIN_PASSWORD} ~* &* +@all",
                f"user {SERVICE_USER} on >{SERVICE_PASSWORD} {service_acl}",
            ]
        )
        + "\n"
    )
    log = root / "redis.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([server, str(conf)], stdout=out, stderr=subprocess.STDOUT)
    found = SecureRedis(port, certs)
    import redis

    admin = redis.Redis.from_url(found.url("admin", ADMIN_PASSWORD), ssl_ca_certs=str(certs.ca))

    def up() -> bool:
        assert proc.poll() is None, f"redis-server exited: {log.read_text()[-2000:]}"
        try:
            return bool(admin.ping())
        except redis.RedisError:
            return False

    try:
        poll(up, timeout=30, interval=0.1, what="the TLS redis-server to answer")
        yield found
    finally:
        admin.close()
        stop_process(proc)
