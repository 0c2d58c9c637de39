"""The local stack's redis-server: loopback only, append-only file on, data in the state folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from services.common.errors import UserError
from services.common.redis_conn import connect_sync, is_cluster
from services.stack import procs
from services.stack.settings import StackSettings


def command(port: int, data: Path, *extra: str) -> list[str]:
    """The redis-server command line of the local stack (and, with ``extra`` flags, of a cluster node):
    loopback only, append-only file on, no RDB snapshots, data in ``data``."""
    server = shutil.which("redis-server")
    if server is None:
        raise UserError(
            "redis-server is missing: run `journeys setup` (installs Debian's redis-server) or set REDIS_URL"
        )
    data.mkdir(parents=True, exist_ok=True)
    return [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data),
        *extra,
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--loglevel",
        "notice",
    ]


def start(settings: StackSettings) -> procs.Proc:
    cmd = command(settings.redis_port, settings.state_path / "redis")  # a missing redis-server is said first
    procs.require_free(settings.redis_port, "Redis", "JOURNEYS_REDIS_PORT")
    return procs.spawn("redis", cmd, settings.state_path / "logs" / "redis.log")


def healthy(url: str, timeout_s: float = 1.0) -> bool:
    """Redis answers PING; a cluster (redis+cluster://) answers through every startup node with
    cluster_state:ok."""
    if is_cluster(url):
        from services.stack import redis_cluster

        return redis_cluster.healthy(url, timeout_s)
    try:
        client = connect_sync(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    except ValueError:
        return False
    try:
        return bool(client.ping())
    except Exception:  # any failure to talk to it means "not healthy"
        return False
    finally:
        client.close()
