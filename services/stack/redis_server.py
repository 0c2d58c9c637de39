"""The local stack's redis-server: loopback only, append-only file on, data in the state folder."""

from __future__ import annotations

import shutil

from services.common.errors import UserError
from services.common.redis_conn import connect_sync, is_cluster
from services.stack import procs
from services.stack.settings import StackSettings


def start(settings: StackSettings) -> procs.Proc:
    server = shutil.which("redis-server")
    if server is None:
        raise UserError(
            "redis-server is missing: run `journeys setup` (installs Debian's redis-server) or set REDIS_URL"
        )
    procs.require_free(settings.redis_port, "Redis", "JOURNEYS_REDIS_PORT")
    data = settings.state_path / "redis"
    data.mkdir(parents=True, exist_ok=True)
    cmd = [
        server,
        "--port",
        str(settings.redis_port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data),
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
