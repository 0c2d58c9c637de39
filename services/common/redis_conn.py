"""Every Redis client in the services is made here, so one URL decides single Redis or Redis Cluster.

``REDIS_URL`` is either a plain redis-py URL (``redis://``, ``rediss://``, ``unix://``) or names a cluster by
its startup nodes: ``redis+cluster://[user:password@]host:port[,host:port...]`` (``rediss+cluster://`` for
TLS). The cluster client discovers the other nodes from any one that answers, so listing a few is enough.
Keyword arguments are passed through to the client unchanged (TLS and ACL options, timeouts), on both kinds.
A TLS URL (``rediss://``, ``rediss+cluster://``) also gets the CA and client certificate files named by
REDIS_SSL_CA_FILE, REDIS_SSL_CERT_FILE and REDIS_SSL_KEY_FILE (validated by CommonSettings), so every
client trusts the same CA without each caller passing it; an ACL user goes in the URL (``user:pass@``).

Scripts on a cluster must touch keys of one hash slot only; :func:`group_by_slot` groups work by slot
(everything is one group on a single Redis, so callers need no second code path).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.cluster as synccluster
from redis.crc import key_slot

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS
TLS_SCHEMES = ("rediss", "rediss+cluster")
TLS_FILES = {
    "REDIS_SSL_CA_FILE": "ssl_ca_certs",
    "REDIS_SSL_CERT_FILE": "ssl_certfile",
    "REDIS_SSL_KEY_FILE": "ssl_keyfile",
}  # environment variable -> redis-py keyword
DEFAULT_PORT = 6379
T = TypeVar("T")

AsyncClient = aioredis.Redis | aiocluster.RedisCluster
SyncClient = redis.Redis | synccluster.RedisCluster


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    """The parts of a ``redis+cluster://`` URL; repr hides the password (URLs end up in logs)."""

    nodes: tuple[tuple[str, int], ...]
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.tls:
            kwargs["ssl"] = True
        if self.username is not None:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs


def is_cluster(url: str) -> bool:
    """True when ``url`` names a Redis Cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterUrl:
    """Startup nodes and credentials of a cluster URL; ValueError (one clear line) when malformed."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError("not a Redis Cluster URL (expected redis+cluster://host:port[,host:port...])")
    # urlsplit cannot take several host:port pairs, so credentials and the node list are split by hand.
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, path = rest[:end], rest[end:]
    if path.split("?", 1)[0].strip("/") not in ("", "0"):
        raise ValueError("a Redis Cluster has database 0 only: drop the /<db> from the URL")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes = tuple(_node(part) for part in hosts.split(",") if part.strip())
    if not nodes:
        raise ValueError("a Redis Cluster URL needs at least one host:port")
    return ClusterUrl(nodes, CLUSTER_SCHEMES[scheme.lower()], username, password)


def _node(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [IPv6]:port
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"Redis Cluster node {text!r} has no host")
    try:
        number = int(port) if port else DEFAULT_PORT
    except ValueError:
        raise ValueError(f"Redis Cluster node {text!r}: port is not a number") from None
    if not 0 < number < 65536:
        raise ValueError(f"Redis Cluster node {text!r}: port out of range")
    return host, number


def tls_options(url: str, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """redis-py's certificate options for a TLS URL, from REDIS_SSL_*; {} for a plain one."""
    if url.split("://", 1)[0].lower() not in TLS_SCHEMES:
        return {}
    return {kw: environ[name] for name, kw in TLS_FILES.items() if environ.get(name)}


def connect(url: str, *, pool_wait_s: float | None = None, **kwargs: Any) -> AsyncClient:
    """An asyncio client: ``RedisCluster`` for a cluster URL, else ``Redis.from_url``. No I/O until used.

    ``pool_wait_s``: on a single Redis, a BlockingConnectionPool of ``max_connections`` whose callers wait
    up to that long for a free connection. A cluster client's per-node pools never wait (an exhausted one
    raises MaxConnectionsError, a ConnectionError), so it is ignored there."""
    kwargs = {**tls_options(url), **kwargs}
    if not is_cluster(url):
        if pool_wait_s is not None:
            pool = aioredis.BlockingConnectionPool.from_url(url, timeout=pool_wait_s, **kwargs)
            return aioredis.Redis(connection_pool=pool)
        return aioredis.Redis.from_url(url, **kwargs)
    parsed = parse_cluster_url(url)
    nodes = [aiocluster.ClusterNode(host, port) for host, port in parsed.nodes]
    return aiocluster.RedisCluster(startup_nodes=nodes, **{**parsed.client_kwargs(), **kwargs})


def connect_sync(url: str, **kwargs: Any) -> SyncClient:
    """The blocking counterpart of :func:`connect`."""
    kwargs = {**tls_options(url), **kwargs}
    if not is_cluster(url):
        return redis.Redis.from_url(url, **kwargs)
    parsed = parse_cluster_url(url)
    nodes = [synccluster.ClusterNode(host, port) for host, port in parsed.nodes]
    return synccluster.RedisCluster(startup_nodes=nodes, **{**parsed.client_kwargs(), **kwargs})


def is_cluster_client(client: object) -> bool:
    """True for a Redis Cluster client (asyncio or blocking), e.g. one made by :func:`connect`."""
    return isinstance(client, (aiocluster.RedisCluster, synccluster.RedisCluster))


def slot_of(key: str | bytes) -> int:
    """The cluster hash slot of ``key`` (honours ``{hash tags}``)."""
    return int(key_slot(key.encode() if isinstance(key, str) else key))


def group_by_slot(items: Iterable[T], key: Callable[[T], str | bytes], *, cluster: bool) -> list[list[T]]:
    """``items`` split into groups whose keys share a hash slot, in first-seen order (stable within a group).

    On a single Redis (``cluster=False``) every item is one group: scripts may span slots there, and
    one round trip beats many."""
    materialised = list(items)
    if not cluster:
        return [materialised] if materialised else []
    groups: dict[int, list[T]] = {}
    for item in materialised:
        groups.setdefault(slot_of(key(item)), []).append(item)
    return list(groups.values())


def redact(url: str, mask: str = "***") -> str:
    """``url`` (any scheme, a cluster's node list too) with its password replaced by ``mask``, for logs
    and error messages."""
    scheme, sep, rest = url.partition("://")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, hosts = rest[:end].rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:{mask}@{hosts}{rest[end:]}"
