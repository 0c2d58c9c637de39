"""One URL decides single Redis or Redis Cluster: parsing, client choice and slot grouping, without I/O."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster

from services.common.keys import Keys
from services.common.redis_conn import (
    ClusterUrl,
    connect,
    connect_sync,
    group_by_slot,
    is_cluster,
    is_cluster_client,
    parse_cluster_url,
    redact,
    slot_of,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis+cluster://127.0.0.1:7000", True),
        ("REDISS+CLUSTER://h:1", True),
        ("redis://127.0.0.1:6379/0", False),
        ("rediss://h:6380", False),
        ("unix:///tmp/redis.sock", False),
        ("redis-cluster://h:1", False),
    ],
)
def test_is_cluster(url: str, expected: bool) -> None:
    assert is_cluster(url) is expected


def test_parses_several_startup_nodes() -> None:
    parsed = parse_cluster_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001, other-host ,[::1]:7002")
    nodes = (("127.0.0.1", 7000), ("127.0.0.1", 7001), ("other-host", 6379), ("::1", 7002))
    assert parsed == ClusterUrl(nodes)
    assert parsed.client_kwargs() == {}


def test_tls_and_credentials() -> None:
    parsed = parse_cluster_url("rediss+cluster://app:s%40cret@h1:7000,h2:7001/0")
    assert parsed.nodes == (("h1", 7000), ("h2", 7001))
    assert parsed.client_kwargs() == {"ssl": True, "username": "app", "password": "s@cret"}
    assert "s@cret" not in repr(parsed)


def test_password_only() -> None:
    assert parse_cluster_url("redis+cluster://:pw@h:1").client_kwargs() == {"password": "pw"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://h:1", "not a Redis Cluster URL"),
        ("redis+cluster://", "at least one host:port"),
        ("redis+cluster://h:x", "port is not a number"),
        ("redis+cluster://h:70000", "port out of range"),
        ("redis+cluster://:7000", "has no host"),
        ("redis+cluster://h:1/3", "database 0 only"),
    ],
)
def test_malformed_urls_say_why(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cluster_url(url)


def test_connect_picks_the_client_and_passes_options_through() -> None:
    single = connect("redis://127.0.0.1:1/2", socket_timeout=3)
    assert type(single) is aioredis.Redis
    assert single.connection_pool.connection_kwargs["socket_timeout"] == 3
    cluster = connect("rediss+cluster://u:p@127.0.0.1:1,127.0.0.1:2", socket_timeout=4, ssl_cert_reqs="none")
    assert isinstance(cluster, aiocluster.RedisCluster)
    assert [(n.host, n.port) for n in cluster.startup_nodes] == [("127.0.0.1", 1), ("127.0.0.1", 2)]
    options = cluster.get_connection_kwargs()
    assert options["socket_timeout"] == 4 and options["username"] == "u" and options["password"] == "p"
    assert options["ssl_cert_reqs"] == "none"


def test_connect_sync_single() -> None:
    # The sync cluster client connects in its constructor: tests/integration/foundation/test_redis_cluster.py.
    assert type(connect_sync("redis://127.0.0.1:1/0", socket_timeout=2)) is redis.Redis
    with pytest.raises(ValueError, match="database 0 only"):
        connect_sync("redis+cluster://127.0.0.1:1/2")


def test_explicit_options_override_the_url() -> None:
    cluster = connect("redis+cluster://u:p@127.0.0.1:1", password="other")
    assert isinstance(cluster, aiocluster.RedisCluster)
    assert cluster.get_connection_kwargs()["password"] == "other"


def test_slots_follow_hash_tags() -> None:
    keys = Keys("jr")
    assert slot_of(keys.timeline("c1")) == slot_of(keys.summary("c1")) == slot_of(b"{jr:c:c1}")
    assert slot_of(keys.identifier("email:ab")) == slot_of(keys.alias("c9"))
    assert 0 <= slot_of("anything") < 16384


def test_group_by_slot() -> None:
    keys = Keys("jr")
    cids = [f"c{i}" for i in range(40)]
    assert group_by_slot(cids, keys.timeline, cluster=False) == [cids]
    assert group_by_slot([], keys.timeline, cluster=False) == []
    groups = group_by_slot(cids, keys.timeline, cluster=True)
    assert sorted(c for g in groups for c in g) == sorted(cids)
    for group in groups:
        assert len({slot_of(keys.timeline(c)) for c in group}) == 1
    assert len(groups) == len({slot_of(keys.timeline(c)) for c in cids}) > 1


def test_redact_hides_passwords() -> None:
    assert redact("redis+cluster://u:pw@h:1,h:2") == "redis+cluster://u:***@h:1,h:2"
    assert redact("redis://h:1/0") == "redis://h:1/0"
    assert "pw" not in redact("rediss://:pw@h:1")
    assert redact("redis://u:p@ss@h:1/0?x=1", "#") == "redis://u:#@h:1/0?x=1"
    assert (
        redact("redis://u@h:1/0") == "redis://u@h:1/0"
        and redact("unix:///tmp/r.sock") == "unix:///tmp/r.sock"
    )


def test_pool_wait_gives_a_blocking_pool_on_single_redis_only() -> None:
    single = connect("redis://127.0.0.1:1/0", pool_wait_s=2.5, max_connections=4)
    assert isinstance(single, aioredis.Redis)
    pool = single.connection_pool
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    assert pool.timeout == 2.5 and pool.max_connections == 4
    plain = connect("redis://127.0.0.1:1/0")
    assert isinstance(plain, aioredis.Redis) and type(plain.connection_pool) is aioredis.ConnectionPool
    cluster = connect("redis+cluster://127.0.0.1:1", pool_wait_s=2.5, max_connections=4)
    assert isinstance(cluster, aiocluster.RedisCluster)
    assert cluster.get_connection_kwargs().get("timeout") is None
    assert is_cluster_client(cluster) and not is_cluster_client(single)
