"""A private Kafka broker (the project's jars, KRaft) whose only client listener is SASL_SSL.

SCRAM users are added when the storage is formatted (``kafka-storage format --add-scram``); PLAIN users
come from the listener's JAAS line. Inter-broker and controller traffic stay on loopback listeners the
clients never learn about (a client that connects to the SASL_SSL port only ever sees that listener)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from services.stack import kafka_broker, procs
from services.stack.settings import StackSettings
from tests.helpers import free_port, poll
from tests.integration.security.certs import STORE_PASSWORD, Certs, make_certs

USER, PASSWORD = "journeys", "scram-pass-for-tests-0123456789"
PLAIN_USER, PLAIN_PASSWORD = "plainuser", "plain-pass-for-tests-0123456789"


@dataclass(frozen=True)
class SecureKafka:
    bootstrap: str
    certs: Certs

    def env(
        self, mechanism: str = "SCRAM-SHA-512", user: str = USER, password: str = PASSWORD
    ) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": mechanism,
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD": password,
            "KAFKA_SSL_CA_FILE": str(self.certs.ca),
        }


def properties(data: Path, port: int, internal: int, controller: int, certs: Certs) -> dict[str, str]:
    jaas_plain = (
        f"org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{PLAIN_USER}="{PLAIN_PASSWORD}";'
    )
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return {
        **kafka_broker.server_properties(data, port, controller, 4),
        "listeners": f"SASL_SSL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal},"
        f"CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"SASL_SSL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal}",
        "inter.broker.listener.name": "INTERNAL",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas_plain,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(certs.keystore),
        "ssl.keystore.password": STORE_PASSWORD,
        "ssl.key.password": STORE_PASSWORD,
        "ssl.client.auth": "none",
    }


def _format(settings: StackSettings, props: Path, root: Path) -> None:
    users = [
        f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]",
        f"SCRAM-SHA-256=[name={USER},password={PASSWORD}]",
    ]
    cmd = kafka_broker._java_cmd(
        settings,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        "Zm9ybWF0LXRlc3QtaWQx",
        "-c",
        str(props),
        *[a for u in users for a in ("--add-scram", u)],
    )
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False, cwd=root)
    assert done.returncode == 0, f"kafka-storage format: {(done.stderr or done.stdout)[-800:]}"


@contextmanager
def secure_kafka(root: Path) -> Iterator[SecureKafka]:
    """Start the broker under ``root``; yields once a SASL_SSL client can list its topics; stops it after."""
    from confluent_kafka.admin import AdminClient

    settings = StackSettings()
    certs = make_certs(root / "certs", "broker")
    port, internal, controller = free_port(), free_port(), free_port()
    props = root / "server.properties"
    kafka_broker.write_properties(props, properties(root / "data", port, internal, controller, certs))
    _format(settings, props, root)
    log = root / "kafka.log"
    cmd = kafka_broker._java_cmd(settings, "kafka.Kafka", str(props), log=log)
    proc = procs.spawn("kafka-sasl", cmd, log)
    found = SecureKafka(f"127.0.0.1:{port}", certs)
    env = found.env()
    admin = AdminClient(
        {
            "bootstrap.servers": found.bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": env["KAFKA_SASL_USERNAME"],
            "sasl.password": env["KAFKA_SASL_PASSWORD"],
            "ssl.ca.location": str(certs.ca),
            "log_level": 0,
        }
    )  # quiet once the broker stops

    def answers() -> bool:
        assert proc.alive(), f"the SASL_SSL broker exited: {log.read_text()[-2000:]}"
        try:
            admin.list_topics(timeout=2)
            return True
        except Exception:
            return False

    try:
        poll(answers, timeout=120, interval=0.5, what="the SASL_SSL broker to answer")
        yield found
    finally:
        procs.stop(proc)
