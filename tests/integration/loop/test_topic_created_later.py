"""A worker subscribed to several topics, one of which the brokers do not report yet (created a moment
later, or not in the metadata when it subscribed), consumes that topic within seconds of its creation,
not after librdkafka's default 5-minute metadata refresh: a journey-map worker once counted no stall for
minutes that way (gap-alerts missing from its first metadata)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer

from services.common.kafka_config import consumer_config
from services.stack.kafka_broker import create_topics
from tests.conftest import Infra
from tests.integration.loop.test_kafka_loop import settings

pytestmark = pytest.mark.integration
WITHIN_S = 40.0  # the workers' refresh is 10 s; librdkafka's default would take up to 300 s


def first_value(consumer: Consumer, topic: str, within_s: float) -> bytes | None:
    began = time.monotonic()
    while time.monotonic() - began < within_s:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None and msg.topic() == topic:
            return msg.value()
    return None


def test_a_topic_created_after_the_group_formed_is_consumed_within_seconds(infra: Infra, unique: str) -> None:
    there, later = f"{unique}-there", f"{unique}-later"
    create_topics(infra.bootstrap_servers, [there], 3)
    producer = Producer({"bootstrap.servers": infra.bootstrap_servers})
    consumer = Consumer(consumer_config(settings(infra), f"{unique}-group"))
    consumer.subscribe([there, later])
    try:
        producer.produce(there, value=b"first")
        assert producer.flush(30) == 0
        assert first_value(consumer, there, 30) == b"first"  # the group formed on the topic that exists

        create_topics(infra.bootstrap_servers, [later], 3)
        producer.produce(later, value=b"late")
        assert producer.flush(30) == 0
        assert first_value(consumer, later, WITHIN_S) == b"late", f"not consumed within {WITHIN_S:.0f} s"
    finally:
        consumer.close()
