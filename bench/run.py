"""One benchmark run's plumbing: private names (topics, groups, key prefix), the workers under test, how
a phase is timed, and the clean-up. Every run gets a fresh tag, so runs never collide with each other
or with the tests on the shared stack."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bench.kafka_io import Pace, Topics
from bench.promtext import stage_breakdown, total
from bench.workers import Worker, clean_env, free_port, redis_cpu_s, wait_until
from services.common.settings import CommonSettings

# A wide table when printed to a file or pipe (rich would wrap it at 80 columns).
console = Console(width=None if sys.stdout.isatty() else 150)
T = TypeVar("T")


def advance(progress: Progress, task: TaskID) -> Callable[[int], None]:
    return lambda done: progress.update(task, completed=done)


def bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.common = args, CommonSettings()
        self.tag = f"bench{uuid.uuid4().hex[:8]}"
        self.logs = Path(f"/tmp/{self.tag}")
        self.logs.mkdir(exist_ok=True)
        self.own_redis = own_redis(self.logs) if args.own_redis else None
        self.redis_url = self.own_redis[1] if self.own_redis else self.common.redis_url
        self.topic = {
            k: f"{self.tag}-{k}"
            for k in ("channel-events", "dlq", "stitched-events", "identity-merges", "gap-alerts")
        }
        self.topics = Topics(self.common.kafka_bootstrap_servers)
        self.redis = redis.Redis.from_url(self.redis_url)
        self.workers: list[Worker] = []
        extra = dict(item.split("=", 1) for item in args.worker_env)
        self.env = clean_env(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.common.kafka_bootstrap_servers,
                "REDIS_URL": self.redis_url,
                "JOURNEYS_KEY_PREFIX": self.tag,
                "JOURNEYS_TOPIC_CHANNEL_EVENTS": self.topic["channel-events"],
                "JOURNEYS_TOPIC_DLQ": self.topic["dlq"],
                "JOURNEYS_TOPIC_STITCHED_EVENTS": self.topic["stitched-events"],
                "JOURNEYS_TOPIC_IDENTITY_MERGES": self.topic["identity-merges"],
                "JOURNEYS_TOPIC_GAP_ALERTS": self.topic["gap-alerts"],
                "JOURNEYS_STITCHER_GROUP": f"{self.tag}-stitcher",
                "JOURNEYS_DETECTOR_GROUP": f"{self.tag}-detector",
                "JOURNEYS_STITCHER_METRICS_PORT": str(free_port()),
                "JOURNEYS_DETECTOR_METRICS_PORT": str(free_port()),
                **extra,
            }
        )

    @property
    def bootstrap(self) -> str:
        return self.common.kafka_bootstrap_servers

    def start(self, role: str, port_var: str) -> Worker:
        worker = Worker(role, self.env, port_var, self.logs / f"{role}.log", self.args.code)
        self.workers.append(worker)
        return worker

    def measure(
        self,
        worker: Worker,
        done: tuple[str, dict[str, str] | None],
        target: int,
        what: str,
        timeout_s: float,
    ) -> tuple[Pace, float, str]:
        """From the worker's first batch until its counter ``done`` reaches ``target``.

        Returns the pace (events after the first batch, wall and worker CPU s), Redis CPU µs/event and
        where the worker's time went (its stage histograms over the same stretch)."""
        name, labels = done
        try:
            wait_until(
                lambda: worker.up() and worker.total(name, labels) > 0,
                f"the {what}'s first batch",
                180,
                every_s=0.02,
            )
        except SystemExit as exc:
            if worker.proc.poll() is not None:
                raise  # check() already quoted the log
            raise SystemExit(f"{exc}; {worker.tail()}") from None
        t0, cpu0, rcpu0 = time.perf_counter(), worker.cpu_s(), redis_cpu_s(self.redis)
        before = worker.metrics()
        first = total(before, name, labels)
        with bar() as progress:
            task = progress.add_task(what, total=target)

            def finished() -> bool:
                worker.check()
                count = worker.total(name, labels)
                progress.update(task, completed=count)
                return count >= target

            # Twice a second: each /metrics scrape costs the worker CPU (at 10/s it was ~7 % of the
            # stitcher's samples in a profile); Prometheus scrapes every 15 s in production.
            wait_until(finished, f"the {what} to reach {target:,}", timeout_s, every_s=0.5)
        wall, cpu, rcpu = time.perf_counter() - t0, worker.cpu_s() - cpu0, redis_cpu_s(self.redis) - rcpu0
        n = int(target - first)
        return Pace(n, wall, cpu), rcpu / max(n, 1) * 1e6, stage_breakdown(before, worker.metrics(), n)

    def cleanup(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self.args.keep:
            console.print(
                f"kept topics and groups {self.tag}-*, Redis keys {self.tag}:* "
                + (f"(private redis-server data in {self.logs})" if self.own_redis else "")
            )
        else:
            listed = self.topics.admin.list_consumer_groups(request_timeout=30).result()
            groups = [g.group_id for g in listed.valid if g.group_id.startswith(self.tag)]
            self.topics.delete(list(self.topic.values()), groups)
            if self.own_redis is None:
                self._drop_keys()
        self.topics.close()
        if self.own_redis is not None:
            self.own_redis[0].terminate()
            self.own_redis[0].wait(timeout=30)

    def _drop_keys(self) -> None:
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=f"{self.tag}:*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                self.redis.unlink(*batch)
                batch.clear()
        if batch:
            self.redis.unlink(*batch)

    def redis_background(self, seconds: float = 2.0) -> float:
        """Redis CPU seconds per second used by other clients while this run is idle (shared server)."""
        before = redis_cpu_s(self.redis)
        time.sleep(seconds)  # a sampling window, not synchronisation
        return (redis_cpu_s(self.redis) - before) / seconds


def own_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A private redis-server for the run, with the local stack's flags (services/stack/redis_server.py:
    append-only file, fsync every second), so no other client's work lands in the Redis CPU figures."""
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("--own-redis needs redis-server on PATH (`journeys setup` installs it)")
    port = free_port()
    with (folder / "redis.log").open("ab") as log:
        proc = subprocess.Popen(
            [
                server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)

    def ready() -> bool:
        if proc.poll() is not None:
            raise SystemExit(f"redis-server exited; see {folder / 'redis.log'}")
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    wait_until(ready, "the private redis-server", 30)
    client.close()
    return proc, url


def quiet(read: Callable[[], T], hold_s: float = 1.0, timeout_s: float = 30) -> T:
    """``read()`` once it has returned the same value for ``hold_s`` (or at the timeout): a worker's last
    batch is fully accounted for (its counters and histograms move after the count we wait for)."""
    last, since, deadline = read(), time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() - since < hold_s and time.monotonic() < deadline:
        time.sleep(0.1)  # polling with a deadline
        if (now := read()) != last:
            last, since = now, time.monotonic()
    return last


def settled_count(run: Run, topic: str, expected: int, timeout_s: float = 30) -> int:
    """Records on ``topic`` once it holds ``expected`` of them, or once it stops growing (1 s unchanged)."""
    deadline, last, since = time.monotonic() + timeout_s, -1, time.monotonic()
    while True:
        count = run.topics.count(topic)
        if count >= expected or time.monotonic() > deadline:
            return count
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since > 1.0 and count > 0:
            return count
        time.sleep(0.1)  # polling with a deadline
