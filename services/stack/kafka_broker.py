"""The local Kafka broker: KRaft combined mode (broker + controller) on loopback."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from services.common.errors import UserError
from services.stack import procs
from services.stack.kafka_jars import ensure_kafka_jars, require_java
from services.stack.settings import PROJECT_ROOT, StackSettings

LOG4J = PROJECT_ROOT / "deploy" / "kafka" / "log4j.properties"
LOG4J_BROKER = PROJECT_ROOT / "deploy" / "kafka" / "log4j-broker.properties"  # a rotated file
FORMAT_TIMEOUT_S = 120  # a one-off JVM run, seconds even on a loaded machine


def server_properties(data_dir: Path, port: int, controller_port: int, partitions: int) -> dict[str, str]:
    """Broker config for a single-node development cluster: quick to start, one replica of everything."""
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": str(partitions),
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        "offsets.topic.replication.factor": "1",
        # Few internal partitions: the group coordinator is ready in a moment instead of after 50 loads.
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
        "log.segment.bytes": str(64 * 1024 * 1024),
    }


def write_properties(path: Path, props: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))


def _java_cmd(settings: StackSettings, main: str, *args: str, log: Path | None = None) -> list[str]:
    """A Kafka tool logging to stdout, or (``log``) the broker logging to that file, rotated by size."""
    logging = [f"-Dlog4j.configuration=file:{LOG4J}"]
    if log is not None:
        from services.common.log_settings import LogSettings

        try:
            limits = LogSettings()
        except ValueError:  # a bad setting elsewhere (the services report it): the defaults here
            limits = LogSettings.model_construct()
        logging = [
            f"-Dlog4j.configuration=file:{LOG4J_BROKER}",
            f"-Djourneys.log.file={log}",
            f"-Djourneys.log.max.bytes={limits.log_max_bytes}",
            f"-Djourneys.log.backups={limits.log_backups}",
        ]
    return [
        require_java(),
        f"-Xmx{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        *logging,
        "-cp",
        f"{settings.kafka_libs}/*",
        main,
        *args,
    ]


def format_storage(settings: StackSettings, props_file: Path, data_dir: Path) -> None:
    """Format the KRaft log dir once; the cluster id is kept beside it, so restarts keep the data."""
    if (data_dir / "meta.properties").is_file():
        return
    id_file = data_dir.parent / "cluster.id"
    # An id kept from an earlier attempt that began with "-" never formatted anything: replace it.
    if not id_file.is_file() or id_file.read_text().startswith("-"):
        id_file.parent.mkdir(parents=True, exist_ok=True)
        id_file.write_text(_cluster_id())
    cmd = _java_cmd(
        settings,
        "kafka.tools.StorageTool",
        "format",
        "--ignore-formatted",
        "-t",
        id_file.read_text().strip(),
        "-c",
        str(props_file),
    )
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UserError(f"formatting Kafka storage took over {FORMAT_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        out = (done.stderr or done.stdout).strip().splitlines()
        raise UserError(f"formatting Kafka storage failed: {out[-1] if out else done.returncode}")


def _cluster_id() -> str:
    # Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding (StorageTool random-uuid).
    # Like Kafka's Uuid.randomUuid, never one that begins with "-": the command line would read it as an
    # option
    # (1 start in 64 failed with "argument --cluster-id/-t: expected one argument").
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def start(settings: StackSettings) -> procs.Proc:
    """Start the broker in the background (jars fetched first when missing). Does not wait for it."""
    procs.require_free(settings.kafka_port, "Kafka", "JOURNEYS_KAFKA_PORT")
    procs.require_free(settings.kafka_controller_port, "Kafka controller", "JOURNEYS_KAFKA_CONTROLLER_PORT")
    ensure_kafka_jars(settings.kafka_libs)
    root = settings.state_path / "kafka"
    data_dir, props_file = root / "data", root / "server.properties"
    write_properties(
        props_file,
        server_properties(
            data_dir, settings.kafka_port, settings.kafka_controller_port, settings.topic_partitions
        ),
    )
    format_storage(settings, props_file, data_dir)
    log = settings.state_path / "logs" / "kafka.log"
    # The JVM's own output (a start-up failure) is appended to the same file by the redirect.
    return procs.spawn("kafka", _java_cmd(settings, "kafka.Kafka", str(props_file), log=log), log)


def _admin(bootstrap: str, timeout_s: float, security: dict[str, Any] | None = None) -> Any:
    """``security``: kafka-python's TLS/SASL arguments (kafka_config.kafka_python_config) for an external
    secured cluster; the local broker is plaintext on loopback."""
    from kafka import KafkaAdminClient

    ms = int(timeout_s * 1000)
    # kafka-python 3 renamed the bootstrap timeout; pass whichever this version knows.
    wanted = {"request_timeout_ms": ms, "bootstrap_timeout_ms": ms, "api_version_auto_timeout_ms": ms}
    known = KafkaAdminClient.DEFAULT_CONFIG
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="journeys-stack",
        **{k: v for k, v in wanted.items() if k in known},
        **(security or {}),
    )


def healthy(bootstrap: str, timeout_s: float = 2.0, security: dict[str, Any] | None = None) -> bool:
    """The broker answers a metadata request (not merely an open port)."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    if not procs.tcp_open(host.strip("[]") or "127.0.0.1", int(port or 9092), timeout=timeout_s):
        return False  # fail fast: the admin client would retry until its timeout
    try:
        admin = _admin(bootstrap, timeout_s, security)
    except Exception:  # any failure to talk to it means "not healthy"
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int, security: dict[str, Any] | None = None
) -> None:
    """Create the topics that do not exist yet (one replica: a single-node cluster)."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = _admin(bootstrap, 30.0, security)
    try:
        missing = sorted(set(names) - set(admin.list_topics()))
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(n, partitions, 1) for n in missing])
    finally:
        admin.close()
