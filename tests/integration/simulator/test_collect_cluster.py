"""The evaluation reads the journey store on Redis Cluster as on one Redis: alias chains (the identity
graph's slot) and timelines (each customer's slot, spread over the nodes), through redis_conn."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from services.common.keys import Keys
from services.common.redis_conn import connect_sync
from services.simulator import collect

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster_redis(redis_cluster: str, key_prefix: str) -> Iterator[Any]:
    client = connect_sync(redis_cluster)
    yield client
    for key in list(client.scan_iter(match=f"{key_prefix}:*", count=1000)):
        client.delete(key)
    client.close()


def test_aliases_and_timelines_on_a_cluster(cluster_redis: Any, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    cids = [f"c_{i:016x}" for i in range(30)]
    for n, cid in enumerate(cids):
        cluster_redis.zadd(keys.timeline(cid), {f"e{n}-a": n, f"e{n}-b": n + 1})
    # c_0 <- c_1 <- c_2: a chain of two hops ends at c_0.
    cluster_redis.set(keys.alias(cids[2]), cids[1])
    cluster_redis.set(keys.alias(cids[1]), cids[0])
    assert len({cluster_redis.get_node_from_key(keys.timeline(c)).name for c in cids}) == 3

    stitched = [{"event_id": f"e{n}-a", "customer_id": cid} for n, cid in enumerate(cids)]
    final = collect.stitched_customers(stitched, cluster_redis, keys)
    assert final["e2-a"] == final["e1-a"] == final["e0-a"] == cids[0]
    assert final["e7-a"] == cids[7]
    store = collect.timelines(cluster_redis, keys, cids)
    assert store[cids[29]] == {"e29-a", "e29-b"} and len(store) == 30
