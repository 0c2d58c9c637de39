"""The ``redis_cluster`` fixture is a real, sharded Redis Cluster that holds scripts to one slot."""

from __future__ import annotations

import pytest
import redis.asyncio.cluster as aiocluster
import redis.cluster as synccluster
from redis.exceptions import RedisClusterException, ResponseError

from services.common.redis_conn import connect, connect_sync, slot_of

pytestmark = pytest.mark.integration

# KEYS[1] is declared; the second key comes in ARGV, so only the server can notice it is in another slot.
TOUCH_TWO = "redis.call('SET', KEYS[1], '1'); redis.call('SET', ARGV[1], '1'); return 1"
INCR_BOTH = "redis.call('INCR', KEYS[1]); return redis.call('INCR', KEYS[2])"


def _key_elsewhere(client: synccluster.RedisCluster, key: str, *, same_node: bool) -> str:
    """A key in another slot than ``key``, served by the same node or by another one."""
    node = client.get_node_from_key(key).name
    for i in range(10000):
        other = f"{key.split('{', 1)[0]}{{o{i}}}"
        if slot_of(other) != slot_of(key) and (client.get_node_from_key(other).name == node) == same_node:
            return other
    raise AssertionError("no such key")


def test_keys_spread_over_every_master(redis_cluster: str, unique: str) -> None:
    client = connect_sync(redis_cluster)
    assert isinstance(client, synccluster.RedisCluster)
    try:
        masters = client.get_primaries()
        assert len(masters) == 3
        keys = [f"t{unique}:{{c{i}}}" for i in range(60)]
        for key in keys:
            client.set(key, "x", ex=60)
        owners = {client.get_node_from_key(key).name for key in keys}
        assert owners == {m.name for m in masters}
        assert client.mget(keys[:1]) == [b"x"]
    finally:
        client.close()


def test_server_rejects_a_script_that_touches_another_slot(redis_cluster: str, unique: str) -> None:
    client = connect_sync(redis_cluster)
    assert isinstance(client, synccluster.RedisCluster)
    try:
        key = f"t{unique}:{{a}}"
        # A key on another node: refused whatever the script (it cannot be served there at all).
        with pytest.raises(ResponseError, match="non local key"):
            client.eval(TOUCH_TWO, 1, key, _key_elsewhere(client, key, same_node=False))
        # Another slot on the same node: Redis 7 lets a script without a shebang through (legacy mode), so
        # only scripts declared with `#!lua` are held to one slot by the server, whichever node they land on.
        elsewhere = _key_elsewhere(client, key, same_node=True)
        assert client.eval(TOUCH_TWO, 1, key, elsewhere) == 1
        with pytest.raises(ResponseError, match="do not hash to the same slot"):
            client.eval("#!lua\n" + TOUCH_TWO, 1, key, elsewhere)
        # The client refuses scripts whose declared KEYS span slots before sending them.
        with pytest.raises(RedisClusterException, match="same key slot"):
            client.eval(INCR_BOTH, 2, key, elsewhere)
        client.delete(key)
        client.delete(elsewhere)
    finally:
        client.close()


async def test_script_with_keys_of_one_hash_tag_works(redis_cluster: str, unique: str) -> None:
    client = connect(redis_cluster)
    assert isinstance(client, aiocluster.RedisCluster)
    try:
        first, second = f"t{unique}:{{c:42}}:tl", f"t{unique}:{{c:42}}:sum"
        assert slot_of(first) == slot_of(second)
        assert await client.eval(INCR_BOTH, 2, first, second) == 1
        assert await client.eval("#!lua\n" + TOUCH_TWO, 1, first, second) == 1
        assert await client.get(second) == b"1"
        await client.delete(first)
        await client.delete(second)
    finally:
        await client.aclose()
