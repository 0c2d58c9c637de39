"""Where integration tests get Kafka and Redis from (see tests/conftest.py).

In order: ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` when set; else testcontainers when a Docker
engine answers; else the project's local stack (``journeys up --infra-only``), started once per
test session. A healthy local stack that is already running is reused; what test sessions started
is stopped by the last session to finish (services/stack/leases.py), never a stack a person started.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from tests.conftest import Infra

KAFKA_IMAGE = "confluentinc/cp-kafka:7.9.0"  # Apache Kafka 3.9, as the local stack
REDIS_IMAGE = "redis:7.4-alpine"


@contextmanager
def provide_infra() -> Iterator[Infra]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None
    redis_url = os.environ.get("REDIS_URL") or None
    if bootstrap and redis_url:
        yield Infra(bootstrap, redis_url)
        return
    with ExitStack() as stack:
        found = _containers(stack, bootstrap, redis_url) if docker_engine_answers() else None
        if found is None:
            found = stack.enter_context(_local_stack())
        yield Infra(*found)


def _containers(stack: ExitStack, bootstrap: str | None, redis_url: str | None) -> tuple[str, str] | None:
    """Kafka and Redis containers for what is not given; None (nothing left running) if they fail."""
    inner = ExitStack()
    try:
        bootstrap = bootstrap or inner.enter_context(_kafka_container())
        redis_url = redis_url or inner.enter_context(_redis_container())
    except Exception as exc:
        inner.close()
        # An engine without the images or the network: the local stack still gives a real broker.
        warnings.warn(f"testcontainers failed ({exc}); using the local stack instead", stacklevel=2)
        return None
    stack.enter_context(inner)
    return bootstrap, redis_url


def docker_engine_answers(timeout_s: float = 3.0) -> bool:
    """A Docker engine (not merely the client) replies to a ping within ``timeout_s``."""
    try:
        import docker

        client = docker.from_env(timeout=int(timeout_s))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no permission, no engine: all mean "no Docker"
        return False


@contextmanager
def _kafka_container() -> Iterator[str]:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:
        from testcontainers.kafka import KafkaContainer

    with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka:
        yield kafka.get_bootstrap_server()


@contextmanager
def _redis_container() -> Iterator[str]:
    try:
        from testcontainers.community.redis import RedisContainer
    except ImportError:
        from testcontainers.redis import RedisContainer

    with RedisContainer(REDIS_IMAGE) as redis:
        yield f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"


@contextmanager
def _local_stack() -> Iterator[tuple[str, str]]:
    """The local stack's Kafka and Redis (either may be external when its variable is set)."""
    from services.stack import leases
    from services.stack.settings import StackSettings

    settings = StackSettings()
    lease = leases.acquire(settings)
    try:
        yield lease.bootstrap_servers, lease.redis_url
    finally:
        leases.release(settings, lease)


@contextmanager
def provide_redis_cluster() -> Iterator[str]:
    """``REDIS_CLUSTER_URL`` when set; else a fresh 3-master cluster of Debian's redis-server on free
    loopback ports (data in a temporary folder), stopped and deleted at the end. Yields its URL."""
    given = os.environ.get("REDIS_CLUSTER_URL")
    if given:
        yield given
        return
    import tempfile
    from pathlib import Path

    from services.stack import redis_cluster

    with (
        tempfile.TemporaryDirectory(prefix="journeys-cluster-") as folder,
        redis_cluster.running(_cluster_ports(redis_cluster.NODES), Path(folder)) as url,
    ):
        yield url


def _cluster_ports(count: int) -> list[int]:
    """``count`` ports, each free with its cluster bus port (+10000), below the ephemeral range."""
    import random

    from services.stack import procs
    from services.stack.redis_cluster import BUS_OFFSET

    picked: list[int] = []
    while len(picked) < count:
        port = random.randint(20000, 30000)  # bus ports 30000-40000, below the ephemeral range
        if port not in picked and procs.port_free(port) and procs.port_free(port + BUS_OFFSET):
            picked.append(port)
    return picked
