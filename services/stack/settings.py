"""Settings of the local stack (``journeys setup|up|down|status``)."""

from __future__ import annotations

import os
from pathlib import Path

from services.common.settings import CommonSettings, env, probe_host

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KAFKA_VERSION = "3.9.1"


class StackSettings(CommonSettings):
    state_dir: str = env(
        "JOURNEYS_STATE_DIR",
        "Folder of the local stack's pid files, logs and data (default: <project>/.journeys).",
        default="",
    )
    cache_dir: str = env(
        "JOURNEYS_CACHE_DIR",
        "Cache of the Kafka jars, shared by clones (default: $XDG_CACHE_HOME/journeys).",
        default="",
    )
    kafka_port: int = env("JOURNEYS_KAFKA_PORT", "Port of the local stack's Kafka broker.", default=39092)
    kafka_controller_port: int = env(
        "JOURNEYS_KAFKA_CONTROLLER_PORT",
        "Port of the local stack's KRaft controller listener.",
        default=39093,
    )
    kafka_heap: str = env("JOURNEYS_KAFKA_HEAP", "JVM heap of the local Kafka broker (-Xmx).", default="512m")
    redis_port: int = env(
        "JOURNEYS_REDIS_PORT",
        "Port of the local stack's redis-server (when REDIS_URL is not set).",
        default=36379,
    )
    redis_cluster: bool = env(
        "JOURNEYS_REDIS_CLUSTER",
        "Start a 3-master Redis Cluster (ports JOURNEYS_REDIS_PORT to +2, cluster bus +10000) instead of one "
        "redis-server; the services get REDIS_URL=redis+cluster://... (`journeys up --redis-cluster`).",
        default=False,
    )
    stack_timeout_s: float = env(
        "JOURNEYS_STACK_TIMEOUT",
        "Seconds each start-up or shut-down wait of the local stack may take.",
        default=90.0,
    )
    stitcher_metrics_port: int = env(
        "JOURNEYS_STITCHER_METRICS_PORT", "Port of the stitcher's /metrics.", default=9101
    )
    detector_metrics_port: int = env(
        "JOURNEYS_DETECTOR_METRICS_PORT", "Port of the gap detector's /metrics.", default=9102
    )
    map_metrics_port: int = env(
        "JOURNEYS_MAP_METRICS_PORT", "Port of the journey-map worker's /metrics.", default=9103
    )
    api_host: str = env(
        "JOURNEYS_API_HOST", "Interface the HTTP API listens on (default: JOURNEYS_BIND_HOST).", default=""
    )
    api_port: int = env("JOURNEYS_API_PORT", "Port of the HTTP API (and its /metrics).", default=8088)

    restart_delay_s: float = env(
        "JOURNEYS_RESTART_DELAY",
        "Seconds `journeys up --supervise` waits to restart a crashed service; doubled per crash in a row.",
        default=1.0,
    )
    restart_max_delay_s: float = env(
        "JOURNEYS_RESTART_MAX_DELAY", "Longest wait of the supervisor before a restart.", default=60.0
    )
    restart_reset_s: float = env(
        "JOURNEYS_RESTART_RESET_AFTER",
        "A service that ran this many seconds before it crashed is restarted after the first delay again.",
        default=60.0,
    )

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir) if self.state_dir else PROJECT_ROOT / ".journeys"

    @property
    def kafka_libs(self) -> Path:
        """Where the broker's jars live; one folder per Kafka version, reused across clones."""
        base = Path(self.cache_dir) if self.cache_dir else _xdg_cache() / "journeys"
        return base / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def external_kafka(self) -> bool:
        """KAFKA_BOOTSTRAP_SERVERS given explicitly: use that broker, start none."""
        return "kafka_bootstrap_servers" in self.model_fields_set and bool(self.kafka_bootstrap_servers)

    @property
    def external_redis(self) -> bool:
        """REDIS_URL given explicitly: use that Redis, start none."""
        return "redis_url" in self.model_fields_set and bool(self.redis_url)

    @property
    def local_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_cluster_ports(self) -> list[int]:
        """The local cluster's nodes: JOURNEYS_REDIS_PORT and the ports next to it."""
        from services.stack.redis_cluster import NODES

        return [self.redis_port + i for i in range(NODES)]

    @property
    def local_redis_url(self) -> str:
        if self.redis_cluster:
            from services.stack.redis_cluster import url

            return url(self.redis_cluster_ports)
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap_servers if self.external_kafka else self.local_bootstrap

    @property
    def redis(self) -> str:
        return self.redis_url if self.external_redis else self.local_redis_url

    @property
    def api_base_url(self) -> str:
        return f"http://{probe_host(self.api_host or self.bind_host)}:{self.api_port}"

    @property
    def metrics_host(self) -> str:
        """Where the stack's health probes reach the workers' /metrics."""
        return probe_host(self.bind_host)


def _xdg_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
