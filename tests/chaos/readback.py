"""Reading back what the pipeline made, from the private stack: whole topics (with headers and timestamps),
committed offsets of the workers' groups, and the journey store / alert keys in Redis."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

import orjson
from confluent_kafka import Consumer, TopicPartition

STITCHER_GROUP, DETECTOR_GROUP = "journeys-stitcher", "journeys-gap-detector"  # the workers' defaults


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]

    def doc(self) -> dict[str, Any] | None:
        try:
            out = orjson.loads(self.value)
        except orjson.JSONDecodeError:
            return None
        return out if isinstance(out, dict) else None


def _consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-read-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "log_level": 2,
        }
    )


def ends(bootstrap: str, topic: str) -> dict[int, int]:
    """High watermark of every partition of ``topic``."""
    c = _consumer(bootstrap)
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions}
    finally:
        c.close()


def committed(bootstrap: str, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 2})
    try:
        got = c.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: max(tp.offset, 0) for tp in got}
    finally:
        c.close()


def read_all(bootstrap: str, topic: str) -> list[Rec]:
    """Every record on ``topic`` up to the high watermarks as of the call."""
    limits = ends(bootstrap, topic)
    c = _consumer(bootstrap)
    out: list[Rec] = []
    try:
        c.assign([TopicPartition(topic, p, 0) for p, end in limits.items() if end > 0])
        done = {p for p, end in limits.items() if end == 0}
        while len(done) < len(limits):
            for m in c.consume(5000, 1.0):
                if m.error() is not None:
                    continue
                p, off = m.partition() or 0, m.offset() or 0
                pairs = cast(list[tuple[str, Any]], m.headers() or [])
                headers = {k: (v if isinstance(v, bytes) else str(v or "").encode()) for k, v in pairs}
                out.append(Rec(p, off, m.timestamp()[1], m.key(), m.value() or b"", headers))
                if off + 1 >= limits[p]:
                    done.add(p)
    finally:
        c.close()
    return out


def scan_keys(client: Any, pattern: str) -> list[str]:
    return [k.decode() if isinstance(k, bytes) else k for k in client.scan_iter(match=pattern, count=1000)]


def timelines(client: Any, prefix: str) -> dict[str, list[str]]:
    """Every customer's journey timeline in Redis: customer id -> event ids (members)."""
    stem = f"{prefix}:{{{prefix}:c:"
    names = scan_keys(client, f"{stem}*}}:tl")
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.zrange(name, 0, -1)
    return {
        name[len(stem) : -len("}:tl")]: [m.decode() for m in members]
        for name, members in zip(names, pipe.execute(), strict=True)
    }


def open_alerts(client: Any, prefix: str) -> dict[str, list[str]]:
    """customer id -> alert ids in its open-alert hash."""
    stem = f"{prefix}:{{{prefix}:c:"
    names = scan_keys(client, f"{stem}*}}:alerts")
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hkeys(name)
    return {
        name[len(stem) : -len("}:alerts")]: [a.decode() for a in ids]
        for name, ids in zip(names, pipe.execute(), strict=True)
    }


def group_members(bootstrap: str, group: str) -> str:
    """Who holds which partitions in ``group`` right now (for a drain that did not finish), one line."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})  # held: it serves the future
    try:
        desc = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    except Exception as exc:  # a diagnosis must not hide the failure it explains
        return f"{group}: not described ({type(exc).__name__} {exc})"
    members = []
    for m in desc.members:
        assigned = m.assignment.topic_partitions if m.assignment else []
        tps = sorted((tp.topic, tp.partition) for tp in assigned)
        held = ",".join(f"{t.rsplit('-', 1)[-1] if '-' in t else t}:{p}" for t, p in tps)
        members.append(f"{m.group_instance_id or m.member_id[:24]} [{held}]")
    return f"{group} {desc.state}: " + ("; ".join(members) or "no members")
