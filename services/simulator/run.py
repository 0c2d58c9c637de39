"""Running a simulation or a replay end to end: generate, write or send with a progress bar, summarise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.common.errors import UserError
from services.common.settings import CommonSettings
from services.gap_detector.core.definitions import load_definitions
from services.simulator import truth as truth_mod
from services.simulator.generator import Population, SimConfig, generate
from services.simulator.streaming import Pacer, ReadReport, make_producer, read_lines, send_all


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("•"),
        TimeRemainingColumn(),
        transient=False,
    )


def build(cfg: SimConfig, definitions: Path | None) -> tuple[Population, dict[str, Any]]:
    defs = load_definitions(definitions)
    with Console(stderr=True).status(f"simulating {cfg.customers} customers and deriving the ground truth…"):
        pop = generate(cfg, defs)
        return pop, truth_mod.build_truth(pop, cfg, defs)


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def summary(pop: Population, truth: dict[str, Any], where: str, truth_path: Path) -> str:
    counts, alerts = truth["counts"], truth["alerts"]
    by_type: dict[str, int] = {}
    for a in alerts:
        by_type[a["type"]] = by_type.get(a["type"], 0) + 1
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(by_type.items()))
    noise = f"{counts['duplicates']} duplicates, {counts['late']} late, {counts['malformed']} malformed"
    return (
        f"{counts['customers']} customers, {counts['events']} events ({counts['records']} records with "
        f"{noise}) -> {where}; truth -> {truth_path}: {len(alerts)} alerts ({kinds}), "
        f"{len(truth['merges'])} merges, {len(truth['incidents'])} incident(s)"
    )


def simulate_to_file(cfg: SimConfig, definitions: Path | None, out: Path, truth_path: Path) -> str:
    pop, truth = build(cfg, definitions)
    try:
        handle = out.open("wb")
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    with handle, progress() as bar:
        task = bar.add_task(f"writing {out.name}", total=len(pop.records))
        for rec in pop.records:
            handle.write(rec.line() + b"\n")
            bar.advance(task)
    _write(truth_path, truth_mod.dump(truth))
    return summary(pop, truth, str(out), truth_path)


def simulate_to_kafka(
    cfg: SimConfig,
    definitions: Path | None,
    settings: CommonSettings,
    truth_path: Path,
    rate: float,
    compression: float,
) -> str:
    pop, truth = build(cfg, definitions)
    _write(truth_path, truth_mod.dump(truth))
    producer = make_producer(settings.kafka_bootstrap_servers, _security(settings))
    topic = settings.topic_channel_events
    try:
        with progress() as bar:
            task = bar.add_task(f"sending to {topic}", total=len(pop.records))
            items = ((r.key.encode(), r.payload(), r.arrival_ms) for r in pop.records)
            send_all(producer, topic, items, Pacer(rate, compression), on_sent=lambda: bar.advance(task))
    finally:
        producer.close()
    return summary(pop, truth, f"topic {topic}", truth_path)


def _security(settings: CommonSettings) -> dict[str, Any]:
    from services.common.kafka_config import kafka_python_config  # loads librdkafka: only when sending

    return kafka_python_config(settings)


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def replay_file(path: Path, settings: CommonSettings, topic: str | None, rate: float) -> ReadReport:
    total = _count_lines(path)
    report = ReadReport()
    target = topic or settings.topic_channel_events
    producer = make_producer(settings.kafka_bootstrap_servers, _security(settings))

    def items() -> Iterator[tuple[bytes | None, bytes, int | None]]:
        for line in read_lines(path, report):
            yield line.key, line.payload, None

    try:
        with progress() as bar:
            task = bar.add_task(f"replaying {path.name} -> {target}", total=total)
            send_all(producer, target, items(), Pacer(rate), on_sent=lambda: bar.advance(task))
            bar.update(task, completed=total)
    finally:
        producer.close()
    return report
