"""A local Redis Cluster from Debian's redis-server: N masters on loopback, no replicas.

Used by `journeys up` when JOURNEYS_REDIS_CLUSTER is on and by the tests' ``redis_cluster`` fixture. Each node
keeps its data and its ``nodes.conf`` in its own folder, so a node restarted on the same folder rejoins the
cluster by itself (``create`` is then skipped). Every node also uses port+10000 for the cluster bus.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from services.common.errors import UserError
from services.common.redis_conn import connect_sync, parse_cluster_url
from services.stack import procs, redis_server

HOST = "127.0.0.1"
NODES = 3
BUS_OFFSET = 10000  # Redis's fixed offset of the cluster bus port


def node_name(port: int) -> str:
    return f"redis-{port}"


def url(ports: Sequence[int], host: str = HOST) -> str:
    """The ``redis+cluster://`` URL naming these nodes (services/common/redis_conn.py)."""
    return "redis+cluster://" + ",".join(f"{host}:{p}" for p in ports)


def require_free(ports: Sequence[int], variable: str) -> None:
    for port in ports:
        if port + BUS_OFFSET > 65535:
            raise UserError(
                f"port {port}: its cluster bus port {port + BUS_OFFSET} is out of range; "
                f"set {variable} below {65535 - BUS_OFFSET - len(ports)}"
            )
        procs.require_free(port, "Redis Cluster node", variable)
        procs.require_free(port + BUS_OFFSET, "Redis Cluster bus", variable)


def spawn_node(port: int, data: Path, log: Path) -> procs.Proc:
    cmd = redis_server.command(
        port,
        data,
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "5000",
    )
    return procs.spawn(node_name(port), cmd, log)


def _info(port: int, timeout_s: float = 1.0, host: str = HOST, **options: Any) -> dict[str, str] | None:
    """CLUSTER INFO of one node, or None when it does not answer."""
    # One node on its own (a plain client), to ask that node: a cluster client would ask any of them.
    address = f"[{host}]" if ":" in host else host
    scheme = "rediss" if options.pop("ssl", False) else "redis"
    client = connect_sync(
        f"{scheme}://{address}:{port}/0",
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        **options,
    )
    try:
        text = client.execute_command("CLUSTER INFO")
    except Exception:  # not up yet, refusing, loading: all mean "no answer yet"
        return None
    finally:
        client.close()
    if isinstance(text, dict):  # redis-py parses CLUSTER INFO itself
        return {str(k): str(v) for k, v in text.items()}
    raw = text.decode() if isinstance(text, bytes) else str(text)
    return dict(line.split(":", 1) for line in raw.splitlines() if ":" in line)


def cluster_ok(ports: Sequence[int]) -> bool:
    """Every node answers, sees all the others and says cluster_state:ok (all 16384 slots served)."""
    for port in ports:
        info = _info(port)
        if info is None or info.get("cluster_state") != "ok":
            return False
        if int(info.get("cluster_known_nodes", "0")) < len(ports):
            return False
    return True


def healthy(cluster_url: str, timeout_s: float = 1.0) -> bool:
    """Every startup node of ``cluster_url`` (local or not) answers and says cluster_state:ok."""
    try:
        parsed = parse_cluster_url(cluster_url)
    except ValueError:
        return False
    options = parsed.client_kwargs()
    for host, port in parsed.nodes:
        info = _info(port, timeout_s, host, **options)
        if info is None or info.get("cluster_state") != "ok":
            return False
    return True


def create(ports: Sequence[int], timeout_s: float) -> None:
    """Join the nodes and share out the slots, unless they already form a cluster (a restart)."""
    procs.wait_until(
        lambda: all(_info(p) is not None for p in ports),
        timeout=timeout_s,
        what="Redis Cluster nodes to answer",
    )
    if all(int((_info(p) or {}).get("cluster_slots_assigned", "0")) > 0 for p in ports):
        return
    cli = shutil.which("redis-cli")
    if cli is None:
        raise UserError("redis-cli is missing: run `journeys setup` (installs Debian's redis-tools)")
    cmd = [
        cli,
        "--cluster",
        "create",
        *(f"{HOST}:{p}" for p in ports),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UserError(f"redis-cli --cluster create did not finish in {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        last = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise UserError(f"redis-cli --cluster create failed (exit {done.returncode}): {last}")


def wait_ok(ports: Sequence[int], timeout_s: float) -> None:
    procs.wait_until(
        lambda: cluster_ok(ports),
        timeout=timeout_s,
        what=f"Redis Cluster on ports {','.join(map(str, ports))} (cluster_state:ok)",
    )


@contextmanager
def running(ports: Sequence[int], folder: Path, timeout_s: float = 60.0) -> Iterator[str]:
    """A fresh cluster on ``ports`` with its data in ``folder``; yields its URL, stops every node after."""
    started: list[procs.Proc] = []
    try:
        for port in ports:
            started.append(spawn_node(port, folder / str(port), folder / "logs" / f"{node_name(port)}.log"))
        create(ports, timeout_s)
        wait_ok(ports, timeout_s)
        yield url(ports)
    finally:
        for proc in started:
            procs.stop(proc, timeout=10)
