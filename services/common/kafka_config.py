"""librdkafka configuration of every Kafka client the services create, from the common settings.

Security (TLS, SASL PLAIN/SCRAM) is part of ``client_config``, so every consumer, producer and admin of
the services gets it; ``kafka_python_config`` says the same to the few kafka-python clients left (the
simulator's tools, the local stack's admin). ``check_access`` fails fast, with one line, when the brokers
refuse the credentials or the TLS handshake (librdkafka itself would retry them forever)."""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from services.common.errors import UserError
from services.common.settings import CommonSettings

# How often a consumer heartbeats (at most): a rebalance reaches every member within about this long.
HEARTBEAT_MS = 1000
# Errors no retry can fix: wrong credentials, a certificate the client does not trust (or the reverse).
REFUSALS = {
    KafkaError._AUTHENTICATION: "refused the SASL credentials",
    KafkaError._SSL: "failed the TLS handshake",
}


def security_config(settings: CommonSettings) -> dict[str, Any]:
    """librdkafka's security properties (none for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    config: dict[str, Any] = {}
    if protocol == "PLAINTEXT":
        return config
    config["security.protocol"] = protocol.lower()
    if protocol.startswith("SASL"):
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        assert settings.kafka_sasl_password is not None  # the settings validator requires it
        config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if protocol.endswith("SSL"):
        for key, value in (
            ("ssl.ca.location", settings.kafka_ssl_ca_file),
            ("ssl.certificate.location", settings.kafka_ssl_cert_file),
            ("ssl.key.location", settings.kafka_ssl_key_file),
        ):
            if value:
                config[key] = value
    return config


def kafka_python_config(settings: CommonSettings) -> dict[str, Any]:
    """The same security as keyword arguments of kafka-python's clients."""
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL"):
        assert settings.kafka_sasl_password is not None
        kwargs.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    if protocol.endswith("SSL"):
        kwargs.update(
            {
                k: v
                for k, v in (
                    ("ssl_cafile", settings.kafka_ssl_ca_file),
                    ("ssl_certfile", settings.kafka_ssl_cert_file),
                    ("ssl_keyfile", settings.kafka_ssl_key_file),
                )
                if v
            }
        )
    return kwargs


def client_config(settings: CommonSettings) -> dict[str, Any]:
    """What every client (consumer, producer, admin) shares: where the brokers are, how to log in."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "logger": logging.getLogger("librdkafka"),
        **security_config(settings),
    }


def refusal(settings: CommonSettings, err: KafkaError) -> str | None:
    """One line for an error no retry fixes (wrong password, untrusted certificate), None otherwise."""
    what = REFUSALS.get(err.code())
    if what is None:
        return None
    who: str = settings.kafka_security_protocol
    if settings.kafka_security_protocol.startswith("SASL"):
        who += f" {settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username!r}"
    hint = (
        "check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM"
        if err.code() == KafkaError._AUTHENTICATION
        else "check KAFKA_SSL_CA_FILE (and the client cert)"
    )
    return f"Kafka at {settings.kafka_bootstrap_servers} {what} ({who}); {hint}"


def check_access(settings: CommonSettings, timeout_s: float = 15.0) -> None:
    """Return once the brokers answer a metadata request with these settings; raise UserError at the first
    refusal (SASL or TLS) instead of letting the clients retry it forever, or when no broker answered
    within ``timeout_s``."""
    refused: list[str] = []

    def on_error(err: KafkaError) -> None:
        line = refusal(settings, err)
        if line is not None:
            refused.append(line)

    probe = Producer({**client_config(settings), "error_cb": on_error, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            probe.poll(0.1)  # serves error_cb
            if refused:
                raise UserError(refused[0])
            try:
                probe.list_topics(timeout=0.5)
                return
            except KafkaException as exc:
                if time.monotonic() >= deadline:
                    raise UserError(
                        f"cannot reach Kafka at {settings.kafka_bootstrap_servers} "
                        f"({exc.args[0].str()}); start it with `journeys up` or set "
                        "KAFKA_BOOTSTRAP_SERVERS"
                    ) from None
    finally:
        probe.flush(0)


def consumer_config(settings: CommonSettings, group_id: str) -> dict[str, Any]:
    """A group consumer that recovers fast (docs/operations.md, "Recovery"):

    - static membership: a worker restarted under its group.instance.id (settings.group_instance_id) takes
      its partitions back at once, no rebalance, no waiting out the session of the member it replaces;
    - a short session (JOURNEYS_KAFKA_SESSION_TIMEOUT, default 10 s) with a 1 s heartbeat: a worker that dies
      for good loses its partitions to the others within about that long;
    - the cooperative-sticky assignor: a rebalance moves only the partitions that change owner, the others
      keep being consumed (the loop's on_assign/on_revoke already add and remove what they are given, and
      confluent-kafka does the incremental assign itself when the callback does not)."""
    timeout_ms = int(settings.session_timeout_s * 1000)
    config = {
        **client_config(settings),
        "group.id": group_id,
        # Offsets are committed by the loop only, explicitly, after a batch is handled and delivered.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": timeout_ms,
        "heartbeat.interval.ms": max(100, min(HEARTBEAT_MS, timeout_ms // 3)),
        "partition.assignment.strategy": "cooperative-sticky",
        # A subscribed topic that appears after the group formed (created later by another service, or
        # not yet in the metadata when the worker subscribed) is found within 10 s: librdkafka's default
        # (5 min) left a journey-map worker, subscribed to three topics of which gap-alerts came a moment
        # late, without a single stall for minutes (tests/integration/loop/test_topic_created_later.py).
        "topic.metadata.refresh.interval.ms": 10_000,
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
    }
    instance = settings.group_instance_id()
    if instance is not None:
        config["group.instance.id"] = instance
    return config


def producer_config(settings: CommonSettings) -> dict[str, Any]:
    return {
        **client_config(settings),
        "acks": "all",
        # Idempotent: a retry inside librdkafka never duplicates or reorders a record on the topic.
        "enable.idempotence": True,
        "linger.ms": 2,
        # Java's partitioner: a keyed record lands on the partition any Java client or Kafka Streams picks.
        "partitioner": "murmur2_random",
        "message.max.bytes": 4 * 1024 * 1024,
    }


def ensure_topics(settings: CommonSettings, names: list[str], timeout_s: float = 15.0) -> None:
    """Create the topics among ``names`` that do not exist (JOURNEYS_TOPIC_PARTITIONS partitions, the
    cluster's default replication), after ``check_access``; one line when the brokers cannot be reached."""
    from confluent_kafka.admin import AdminClient, NewTopic

    check_access(settings, timeout_s)
    admin = AdminClient(client_config(settings))
    where = settings.kafka_bootstrap_servers
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise UserError(
            f"cannot reach Kafka at {where} ({exc.args[0].str()}); start it with `journeys up` "
            "or set KAFKA_BOOTSTRAP_SERVERS"
        ) from None
    missing = [n for n in dict.fromkeys(names) if n not in existing]
    if not missing:
        return
    futures = admin.create_topics(
        [NewTopic(n, settings.topic_partitions, -1) for n in missing], request_timeout=timeout_s
    )
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # another worker was first: fine
                raise UserError(f"cannot create topic {name} at {where}: {exc.args[0].str()}") from None
    _await_visible(admin, missing, timeout_s)


def _await_visible(admin: Any, names: list[str], timeout_s: float) -> None:
    """Wait until the brokers report every one of ``names`` with led partitions: a created topic reaches
    the metadata a moment after the controller accepts it, and a consumer subscribing in between is told
    it does not exist. Best effort: after ``timeout_s`` the consumer's own metadata refresh takes over."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=timeout_s).topics
        if all(
            n in topics
            and topics[n].error is None
            and topics[n].partitions
            and all(p.leader >= 0 for p in topics[n].partitions.values())
            for n in names
        ):
            return
        time.sleep(0.1)  # polling the brokers' metadata, not synchronising a test
