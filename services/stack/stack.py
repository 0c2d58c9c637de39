"""`up`, `down` and `status` of the local stack, as functions (the CLI, test fixtures and demo call them)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.common.errors import UserError
from services.common.redis_conn import redact
from services.stack import apps, kafka_broker, procs, redis_cluster, redis_server, state, supervisor
from services.stack.settings import StackSettings
from services.stack.state import StackState

Say = Callable[[str], None]
INFRA = ("kafka", "redis")


def _is_infra(name: str) -> bool:
    """Kafka, the redis-server, or a node of the local Redis Cluster (redis-<port>)."""
    return name in INFRA or name.startswith("redis-")


@dataclass
class UpResult:
    bootstrap_servers: str
    redis_url: str
    started: list[str] = field(default_factory=list)  # processes this call started
    skipped: list[str] = field(default_factory=list)  # services whose command is not built yet


def _quiet(_: str) -> None:
    pass


def up(
    settings: StackSettings, *, infra_only: bool = False, supervise: bool = False, say: Say = _quiet
) -> UpResult:
    """Start what is not running yet; on failure stop what this call started and raise UserError.
    ``supervise``: also a supervisor that restarts a crashed service (services/stack/supervisor.py)."""
    with state.locked(settings.state_path, settings.stack_timeout_s):
        return up_locked(settings, infra_only=infra_only, supervise=supervise, say=say)


def up_locked(
    settings: StackSettings, *, infra_only: bool = False, supervise: bool = False, say: Say = _quiet
) -> UpResult:
    """`up` for a caller that already holds the state folder's lock."""
    st = state.load(settings.state_path)
    if st is None or not any(p.alive() for p in st.procs.values()):
        st = StackState(settings.bootstrap, settings.redis, settings.api_base_url)
    result = UpResult(st.bootstrap_servers, st.redis_url)
    if not infra_only:
        _preflight_apps(settings, st)
    try:
        _up_infra(settings, st, result, say)
        if not infra_only:
            _up_apps(settings, st, result, say)
            if supervise:
                _start(settings, st, result, supervisor.NAME, lambda: _spawn_supervisor(settings), say)
    except BaseException:
        _stop_names(settings, st, result.started, say)
        raise
    return result


def _start(
    settings: StackSettings,
    st: StackState,
    result: UpResult,
    name: str,
    starter: Callable[[], procs.Proc],
    say: Say,
) -> None:
    running = st.procs.get(name)
    if running is not None and running.alive():
        say(f"{name}: already running (pid {running.pid})")
        return
    state.forget(settings.state_path, st, name)
    proc = starter()
    st.procs[name] = proc
    result.started.append(name)
    state.save(settings.state_path, st)  # recorded at once, so `down` can stop it even if `up` fails later
    say(f"{name}: started (pid {proc.pid}, log {proc.log})")


def _spawn_supervisor(settings: StackSettings) -> procs.Proc:
    log = settings.state_path / "logs" / f"{supervisor.NAME}.log"
    # Our own environment (ports, state folder, e.g. JOURNEYS_TIMER_CLOCK): its restarts get what `up` gave.
    return procs.spawn(
        supervisor.NAME, supervisor.command(), log, env={**os.environ, "JOURNEYS_LOG_FILE": str(log)}
    )


def _abort_if_dead(st: StackState, name: str) -> Callable[[], str | None]:
    def check() -> str | None:
        proc = st.procs.get(name)
        if proc is None or proc.alive():
            return None
        return f"{name} exited; last log lines: {procs.tail(proc.log)}"

    return check


def _log_of(st: StackState, name: str) -> str | None:
    proc = st.procs.get(name)
    return proc.log if proc is not None else None


def _kafka_security(settings: StackSettings) -> dict[str, Any] | None:
    """TLS/SASL for an external cluster (KAFKA_SECURITY_PROTOCOL &c.); the local broker is plaintext."""
    from services.common.kafka_config import kafka_python_config

    return kafka_python_config(settings) if settings.external_kafka else None


def _up_infra(settings: StackSettings, st: StackState, result: UpResult, say: Say) -> None:
    if settings.external_kafka:
        say(f"kafka: using KAFKA_BOOTSTRAP_SERVERS={st.bootstrap_servers}")
    else:
        _start(settings, st, result, "kafka", lambda: kafka_broker.start(settings), say)
    timeout = settings.stack_timeout_s
    redis_procs = ["redis"]
    if settings.external_redis:
        say("redis: using REDIS_URL")
    elif settings.redis_cluster:
        redis_procs = _up_redis_cluster(settings, st, result, say)
    else:
        _start(settings, st, result, "redis", lambda: redis_server.start(settings), say)
    procs.wait_until(
        lambda: redis_server.healthy(st.redis_url),
        timeout=timeout,
        what=f"Redis at {_safe_url(st.redis_url)}",
        abort=_abort_if_any_dead(st, redis_procs),
        log=_log_of(st, redis_procs[0]),
    )
    sec = _kafka_security(settings)
    procs.wait_until(
        lambda: kafka_broker.healthy(st.bootstrap_servers, security=sec),
        timeout=timeout,
        interval=0.25,
        what=f"Kafka broker at {st.bootstrap_servers}",
        abort=_abort_if_dead(st, "kafka"),
        log=_log_of(st, "kafka"),
    )
    kafka_broker.create_topics(st.bootstrap_servers, _topics(settings), settings.topic_partitions, sec)
    say(f"kafka: ready at {st.bootstrap_servers}; redis: ready at {_safe_url(st.redis_url)}")


def _up_redis_cluster(settings: StackSettings, st: StackState, result: UpResult, say: Say) -> list[str]:
    """The nodes of the local Redis Cluster (those not running yet), joined into one cluster once."""
    ports = settings.redis_cluster_ports
    if st.redis_url != redis_cluster.url(ports):
        raise UserError(
            f"the running stack uses Redis at {_safe_url(st.redis_url)}, not a cluster: `journeys down` first"
        )
    names = [redis_cluster.node_name(p) for p in ports]
    for port, name in zip(ports, names, strict=True):

        def spawn(p: int = port, n: str = name) -> procs.Proc:
            redis_cluster.require_free([p], "JOURNEYS_REDIS_PORT")
            log = settings.state_path / "logs" / f"{n}.log"
            return redis_cluster.spawn_node(p, settings.state_path / "redis-cluster" / str(p), log)

        _start(settings, st, result, name, spawn, say)
    redis_cluster.create(ports, settings.stack_timeout_s)
    return names


def _abort_if_any_dead(st: StackState, names: list[str]) -> Callable[[], str | None]:
    checks = [_abort_if_dead(st, n) for n in names]
    return lambda: next((reason for check in checks if (reason := check())), None)


def _topics(settings: StackSettings) -> list[str]:
    return [
        settings.topic_channel_events,
        settings.topic_dlq,
        settings.topic_stitched_events,
        settings.topic_identity_merges,
        settings.topic_gap_alerts,
    ]


def _preflight_apps(settings: StackSettings, st: StackState) -> None:
    """Fail before the broker's slow start when a service could not bind its port anyway."""
    for app in apps.apps(settings):
        running = st.procs.get(app.name)
        if running is None or not running.alive():
            procs.require_free(app.port, app.name, app.port_variable)


def _up_apps(settings: StackSettings, st: StackState, result: UpResult, say: Say) -> None:
    known = apps.registered_commands()
    env = apps.app_env(settings, st.bootstrap_servers, st.redis_url)
    log_dir = settings.state_path / "logs"
    wanted = []
    for app in apps.apps(settings):
        if app.command not in known:
            result.skipped.append(app.name)
            say(f"{app.name}: skipped (`journeys {app.command}` is not built yet)")
            continue
        wanted.append(app)
        _start(
            settings,
            st,
            result,
            app.name,
            lambda a=app: apps.start(a, log_dir / f"{a.name}.log", env),  # type: ignore[misc]
            say,
        )
        st.health[app.name] = app.health_url
        state.save(settings.state_path, st)
    for app in wanted:
        url = app.health_url
        procs.wait_until(
            lambda u=url: apps.http_healthy(u),  # type: ignore[misc]
            timeout=settings.stack_timeout_s,
            interval=0.25,
            what=f"{app.name} at {url}",
            abort=_abort_if_dead(st, app.name),
            log=_log_of(st, app.name),
        )
        say(f"{app.name}: healthy at {app.health_url}")


def stop_started(settings: StackSettings, names: list[str], say: Say = _quiet) -> list[str]:
    """Stop just ``names`` (e.g. what a test session started itself); returns those it stopped."""
    with state.locked(settings.state_path, settings.stack_timeout_s):
        return stop_started_locked(settings, names, say)


def stop_started_locked(settings: StackSettings, names: list[str], say: Say = _quiet) -> list[str]:
    """`stop_started` for a caller that already holds the state folder's lock."""
    st = state.load(settings.state_path)
    if st is None:
        return []
    return _stop_names(settings, st, names, say)


def down(settings: StackSettings, say: Say = _quiet) -> list[str]:
    """Stop everything `up` started (services first, the broker last), nothing else."""
    with state.locked(settings.state_path, settings.stack_timeout_s):
        st = state.load(settings.state_path)
        if st is None:
            say("nothing to stop (no stack.json)")
            return []
        return _stop_names(settings, st, list(st.procs), say)


def _stop_names(settings: StackSettings, st: StackState, names: list[str], say: Say) -> list[str]:
    # The supervisor first (else it restarts what we stop), then the services, in start order, before the
    # infrastructure they drain into.
    first = [n for n in st.procs if n == supervisor.NAME]
    services = [n for n in st.procs if not _is_infra(n) and n not in first]
    order = first + services + [n for n in st.procs if _is_infra(n)]
    stopped = []
    for name in order:
        if name not in names:
            continue
        proc = st.procs[name]
        if procs.stop(proc, timeout=settings.stack_timeout_s / 3):
            stopped.append(name)
            say(f"{name}: stopped (pid {proc.pid})")
        else:
            say(f"{name}: was not running")
        state.forget(settings.state_path, st, name)
    if st.procs:
        state.save(settings.state_path, st)
    else:
        state.state_file(settings.state_path).unlink(missing_ok=True)
    return stopped


def status(settings: StackSettings) -> dict[str, Any]:
    """Endpoints in use and the health of every process `up` started (JSON-ready)."""
    st = state.load(settings.state_path)
    if st is None:
        st = StackState(settings.bootstrap, settings.redis, settings.api_base_url)
    kafka_ok = kafka_broker.healthy(st.bootstrap_servers, timeout_s=1.0, security=_kafka_security(settings))
    redis_ok = redis_server.healthy(st.redis_url)
    rows = []
    for name, proc in st.procs.items():
        alive = proc.alive()
        if name == "kafka":
            ok = alive and kafka_ok
        elif name == "redis" or name.startswith("redis-"):
            ok = alive and redis_ok
        elif name in st.health:
            ok = alive and apps.http_healthy(st.health[name])
        else:  # the supervisor: alive is healthy
            ok = alive
        rows.append(
            {
                "name": name,
                "pid": proc.pid if alive else None,
                "healthy": ok,
                "log": proc.log,
                "restarts": st.restarts.get(name, 0),
            }
        )
    pid_of = {r["name"]: r["pid"] for r in rows}
    return {
        "kafka": {"bootstrap_servers": st.bootstrap_servers, "pid": pid_of.get("kafka"), "healthy": kafka_ok},
        "redis": {"url": _safe_url(st.redis_url), "pid": pid_of.get("redis"), "healthy": redis_ok},
        "api": {"base_url": st.api_base_url},
        "processes": rows,
    }


def _safe_url(url: str) -> str:
    """A Redis URL (a cluster's too) without its password, for output."""
    return redact(url)
