"""The batch handlers' wiring, with the pure models standing in for Redis and a list for Kafka."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pytest

from services.common.timeutil import format_ms, now_ms
from services.stitcher.adapters.kafka_batch import OutRecord
from services.stitcher.core.batch import Prepared, Raw
from services.stitcher.core.identity import IdentityGraph, Resolution
from services.stitcher.core.journey import JourneyStore
from services.stitcher.core.stitch import touchpoint
from services.stitcher.settings import StitcherSettings
from services.stitcher.worker import BatchHandlers

pytestmark = pytest.mark.unit


class ModelStore:
    def __init__(self) -> None:
        self.graph, self.store = IdentityGraph(StitcherSettings().limits), JourneyStore(100)

    async def resolve(self, batch: Sequence[Prepared], now_ms: int) -> list[Resolution]:
        return [self.graph.resolve(p.event["event_id"], p.occurred_ms, [i.key for i in p.idents], p.mint)
                for p in batch]

    async def write(self, stitched: Sequence[Mapping[str, Any]]) -> list[int]:
        return [self.store.write(self.graph.alias, self.graph.aliases_of, st["customer_id"], st["event_id"],
                                 st["occurred_at_ms"], orjson.dumps(touchpoint(st)), {}) for st in stitched]


class ListSender:
    def __init__(self) -> None:
        self.sent: list[OutRecord] = []

    async def send_all(self, records: Sequence[OutRecord]) -> None:
        self.sent.extend(records)


def raw(offset: int, value: bytes, key: bytes | None = None) -> Raw:
    return Raw(value, key, {"trace": b"t-1"}, "channel-events", 2, offset, now_ms())


def event(eid: str, **ids: str) -> bytes:
    return orjson.dumps({"event_id": eid, "occurred_at": format_ms(now_ms() - 1000), "channel": "web",
                         "touchpoint": "login", "identifiers": ids})


async def test_a_batch_is_dead_lettered_stitched_merged_and_written() -> None:
    store, sender = ModelStore(), ListSender()
    settings = StitcherSettings()
    handlers = BatchHandlers(settings, store, sender)  # type: ignore[arg-type]
    await handlers.identity_batch([
        raw(0, event("e1", cookie_id="ck-1")), raw(1, event("e2", email="a@shop.com")),
        raw(2, b"\xff not json", key=b"k"), raw(3, event("e3", cookie_id="ck-1", email="a@shop.com")),
    ])
    by_topic: dict[str, list[OutRecord]] = {}
    for rec in sender.sent:
        by_topic.setdefault(rec.topic, []).append(rec)
    (dead,) = by_topic[settings.topic_dlq]
    headers = dict(dead.headers)
    assert (dead.value, dead.key, headers["dlq_reason"], headers["trace"]) == (b"\xff not json", b"k",
                                                                              b"malformed_json", b"t-1")
    assert (headers["dlq_source_partition"], headers["dlq_source_offset"]) == (b"2", b"2")
    stitched = [orjson.loads(r.value or b"") for r in by_topic[settings.topic_stitched_events]]
    assert [s["event_id"] for s in stitched] == ["e1", "e2", "e3"]
    assert all(r.key == orjson.loads(r.value or b"")["customer_id"].encode()
               for r in by_topic[settings.topic_stitched_events])
    merges = [orjson.loads(r.value or b"") for r in by_topic[settings.topic_identity_merges]]
    (merge,) = merges
    assert merge["kind"] == "merge" and merge["survivor"] == stitched[2]["customer_id"]

    await handlers.journey_batch([r.value for r in by_topic[settings.topic_stitched_events]], [0, 0, 0])
    (journey,) = store.store.journeys.values()
    assert set(journey.timeline) == {"e1", "e2", "e3"}
