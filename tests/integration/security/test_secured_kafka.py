"""The stitcher and the gap detector run against a broker whose only client listener is SASL_SSL
(SCRAM-SHA-512 users added at storage format, certificates made by the test), and a wrong password or an
untrusted CA stops a service at once with one line instead of retrying forever.

Without the security settings in services.common.kafka_config.client_config the services cannot reach
this broker at all, so the first test fails; without check_access the refusals hang until the timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from services.common.kafka_config import consumer_config, producer_config
from services.common.settings import CommonSettings
from services.common.timeutil import format_ms, now_ms
from tests.conftest import Topics
from tests.helpers import free_port, poll, run_journeys
from tests.integration.ops.services import service
from tests.integration.security.certs import make_ca
from tests.integration.security.secure_kafka import PLAIN_PASSWORD, PLAIN_USER, SecureKafka, secure_kafka

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    with secure_kafka(tmp_path_factory.mktemp("sasl-kafka")) as found:
        yield found


def settings_of(env: dict[str, str]) -> CommonSettings:
    return CommonSettings(**{k: v for k, v in env.items() if k.startswith(("KAFKA_", "JOURNEYS_TOPIC"))})


def event(eid: str, minute: int, email: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": eid,
            "occurred_at": format_ms(now_ms() - (30 - minute) * 60_000),
            "channel": "web",
            "touchpoint": "page",
            "identifiers": {"email": email},
        }
    )


def committed(settings: CommonSettings, group: str, topic: str) -> int:
    consumer = Consumer(consumer_config(settings, group) | {"group.instance.id": f"probe-{group}"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        parts = [TopicPartition(topic, p) for p in (meta.partitions if meta else {})]
        return sum(max(0, tp.offset) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


def test_stitcher_and_detector_run_over_sasl_ssl(
    kafka: SecureKafka, service_env: dict[str, str], topics: Topics, tmp_path: Path, key_prefix: str
) -> None:
    ports = {"stitcher": free_port(), "detector": free_port()}
    env = {
        **service_env,
        **kafka.env(),
        "JOURNEYS_TOPIC_PARTITIONS": "2",
        "JOURNEYS_STITCHER_METRICS_PORT": str(ports["stitcher"]),
        "JOURNEYS_DETECTOR_METRICS_PORT": str(ports["detector"]),
        "JOURNEYS_STITCHER_GROUP": f"s-{key_prefix}",
        "JOURNEYS_DETECTOR_GROUP": f"d-{key_prefix}",
        "JOURNEYS_INSTANCE_ID": "none",
    }
    settings = settings_of(env)
    with ExitStack() as stack:
        for name in ("stitcher", "detector"):
            stack.enter_context(
                service(name, env, tmp_path / f"{name}.log", f"http://127.0.0.1:{ports[name]}/metrics")
            )
        producer = Producer(producer_config(settings))
        for i in range(3):
            value = event(f"sec-{key_prefix}-{i}", i, "sasl.user@example.com")
            producer.produce(topics.channel_events, value)
        assert producer.flush(30) == 0
        poll(
            lambda: committed(settings, f"s-{key_prefix}", topics.channel_events) >= 3,
            timeout=90,
            interval=0.5,
            what="the stitcher to commit the events it read over SASL_SSL",
        )
        poll(
            lambda: committed(settings, f"d-{key_prefix}", topics.stitched_events) >= 3,
            timeout=90,
            interval=0.5,
            what="the detector to commit the stitched events it read over SASL_SSL",
        )
    assert _read_all(settings, topics.stitched_events, 3) == {f"sec-{key_prefix}-{i}" for i in range(3)}


def _read_all(settings: CommonSettings, topic: str, want: int) -> set[str]:
    consumer = Consumer(consumer_config(settings, f"read-{topic}") | {"group.instance.id": f"r-{topic}"})
    consumer.subscribe([topic])
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    try:
        while len(seen) < want and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                seen.add(orjson.loads(msg.value())["event_id"])
    finally:
        consumer.close()
    return seen


def test_plain_and_scram_256_users_log_in_too(kafka: SecureKafka) -> None:
    for env in (kafka.env("PLAIN", PLAIN_USER, PLAIN_PASSWORD), kafka.env("SCRAM-SHA-256")):
        producer = Producer(producer_config(settings_of(env)))
        assert producer.list_topics(timeout=20).brokers, env["KAFKA_SASL_MECHANISM"]


@pytest.mark.parametrize("command", ["stitcher", "detector"])
def test_a_wrong_password_stops_a_service_with_one_line(
    kafka: SecureKafka, service_env: dict[str, str], command: str
) -> None:
    env = {
        **service_env,
        **kafka.env(password="not-the-password-0123456789"),
        "JOURNEYS_STITCHER_METRICS_PORT": str(free_port()),
        "JOURNEYS_DETECTOR_METRICS_PORT": str(free_port()),
    }
    started = time.monotonic()
    done = run_journeys(env, command, timeout=60)
    took = time.monotonic() - started
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"journeys: error: Kafka at {kafka.bootstrap} refused the SASL credentials "
        "(SASL_SSL SCRAM-SHA-512 as 'journeys')"
    )
    assert "not-the-password" not in done.stderr
    assert took < 30, f"took {took:.1f} s to give up"


def test_an_untrusted_broker_certificate_stops_a_service_with_one_line(
    kafka: SecureKafka, service_env: dict[str, str], tmp_path: Path
) -> None:
    other_ca, _ = make_ca(tmp_path / "other")
    env: dict[str, Any] = {
        **service_env,
        **kafka.env(),
        "KAFKA_SSL_CA_FILE": str(other_ca),
        "JOURNEYS_STITCHER_METRICS_PORT": str(free_port()),
    }
    done = run_journeys(env, "stitcher", timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"journeys: error: Kafka at {kafka.bootstrap} failed the TLS handshake (SASL_SSL SCRAM-SHA-512 as "
        "'journeys'); check KAFKA_SSL_CA_FILE (and the client cert)"
    ]


def test_no_broker_at_all_is_one_line_after_the_timeout() -> None:
    from services.common.errors import UserError
    from services.common.kafka_config import check_access

    started = time.monotonic()
    with pytest.raises(UserError, match=r"cannot reach Kafka at 127\.0\.0\.1:1 .*journeys up"):
        check_access(CommonSettings(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1"), timeout_s=2)
    assert time.monotonic() - started < 10
