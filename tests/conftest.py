"""Shared fixtures. Integration tests get a real Kafka and Redis, unique topics and a Redis key prefix.

Where the infrastructure comes from, in order: ``KAFKA_BOOTSTRAP_SERVERS``/``REDIS_URL`` when set;
testcontainers when a Docker engine answers; otherwise the project's local stack, started once per
session and shared with overlapping sessions (tests/infra.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Infra:
    bootstrap_servers: str
    redis_url: str


@dataclass(frozen=True)
class Topics:
    channel_events: str
    dlq: str
    stitched_events: str
    identity_merges: str
    gap_alerts: str

    def env(self) -> dict[str, str]:
        return {
            "JOURNEYS_TOPIC_CHANNEL_EVENTS": self.channel_events,
            "JOURNEYS_TOPIC_DLQ": self.dlq,
            "JOURNEYS_TOPIC_STITCHED_EVENTS": self.stitched_events,
            "JOURNEYS_TOPIC_IDENTITY_MERGES": self.identity_merges,
            "JOURNEYS_TOPIC_GAP_ALERTS": self.gap_alerts,
        }


def pytest_configure(config: pytest.Config) -> None:
    from services.common.scripts import Script

    # Every script the tests run in-process is held to one hash slot by the server (on a cluster), as
    # production is not (it costs a third of the stitcher's Redis CPU): services/common/scripts.py.
    Script.strict = True


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    from tests.infra import provide_infra  # heavy imports only for integration tests

    with provide_infra() as found:
        yield found


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[str]:
    """The ``redis+cluster://`` URL of a real 3-master Redis Cluster: ``REDIS_CLUSTER_URL`` when set, else one
    started from Debian's redis-server for this session (tests/infra.py). Use unique key prefixes on it."""
    from tests.infra import provide_redis_cluster

    with provide_redis_cluster() as url:
        yield url


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topics(unique: str) -> Topics:
    names = ("channel-events", "channel-events-dlq", "stitched-events", "identity-merges", "gap-alerts")
    return Topics(*(f"t{unique}-{n}" for n in names))


@pytest.fixture
def key_prefix(unique: str) -> str:
    return f"t{unique}"


@pytest.fixture
def service_env(infra: Infra, topics: Topics, key_prefix: str) -> dict[str, str]:
    """Environment for a service subprocess wired to this test's topics and key prefix."""
    env = dict(os.environ)
    env.update(topics.env())
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
            "REDIS_URL": infra.redis_url,
            "JOURNEYS_KEY_PREFIX": key_prefix,
            "JOURNEYS_ENV": "dev",
            "JOURNEYS_HMAC_SECRET": "test-secret",
        }
    )
    return env


@pytest.fixture
def redis_client(infra: Infra, key_prefix: str) -> Iterator[object]:
    import redis

    client = redis.Redis.from_url(infra.redis_url)
    yield client
    for key in client.scan_iter(match=f"{key_prefix}:*", count=1000):
        client.delete(key)
    client.close()
