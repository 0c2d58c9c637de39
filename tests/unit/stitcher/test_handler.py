"""The stitcher's loop handler wired to the pure model (StitchModel stands in for the Redis store) and a list
for the outbox: what it produces, what it counts, and that a redelivered batch changes nothing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import pytest

from services.common.kafka_loop import OutRecord, Record
from services.common.timeutil import format_ms, now_ms
from services.stitcher.core.batch import Prepared
from services.stitcher.core.journey import Stitched
from services.stitcher.core.model import StitchModel
from services.stitcher.metrics import StitcherMetrics
from services.stitcher.settings import StitcherSettings
from services.stitcher.worker import StitchHandler

pytestmark = pytest.mark.unit


class ModelStore:
    def __init__(self, settings: StitcherSettings) -> None:
        self.model = StitchModel(settings.limits, settings.max_touchpoints)
        self.failing = False

    async def stitch(self, batch: Sequence[Prepared], now_ms: int) -> list[Stitched]:
        if self.failing:
            raise ConnectionError("redis down")
        return self.model.stitch(batch, now_ms)


class ListOutbox:
    def __init__(self) -> None:
        self.sent: list[OutRecord] = []

    def send(self, records: Iterable[OutRecord]) -> None:
        self.sent.extend(records)

    async def flush(self) -> None:
        pass

    def on(self, topic: str) -> list[OutRecord]:
        return [r for r in self.sent if r.topic == topic]


def record(offset: int, value: bytes, key: bytes | None = None) -> Record:
    return Record("channel-events", 2, offset, key, value, {"trace": b"t-1"}, now_ms() - 50)


def event(eid: str, channel: str = "web", **ids: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": eid,
            "occurred_at": format_ms(now_ms() - 1000),
            "channel": channel,
            "touchpoint": "login",
            "identifiers": ids,
        }
    )


def batch() -> list[Record]:
    return [
        record(0, event("e1", cookie_id="ck-1")),
        record(1, event("e2", "phone", email="a@shop.com")),
        record(2, b"\xff not json", key=b"k"),
        record(3, event("e3", cookie_id="ck-1", email="a@shop.com")),
    ]


def sample(m: StitcherMetrics, name: str, **labels: str) -> float:
    return m.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def settings() -> StitcherSettings:
    return StitcherSettings()


async def test_a_batch_is_dead_lettered_stitched_merged_and_written(settings: StitcherSettings) -> None:
    store, out, m = ModelStore(settings), ListOutbox(), StitcherMetrics()
    await StitchHandler(settings, store, m).handle(batch(), out)  # type: ignore[arg-type]

    (dead,) = out.on(settings.topic_dlq)
    headers = dict(dead.headers)
    assert (dead.value, dead.key, headers["dlq_reason"], headers["trace"]) == (
        b"\xff not json",
        b"k",
        b"malformed_json",
        b"t-1",
    )
    assert (headers["dlq_source_partition"], headers["dlq_source_offset"]) == (b"2", b"2")
    stitched = out.on(settings.topic_stitched_events)
    docs = [orjson.loads(r.value or b"") for r in stitched]
    assert [d["event_id"] for d in docs] == ["e1", "e2", "e3"]
    assert [r.key for r in stitched] == [d["customer_id"].encode() for d in docs]
    (merge,) = [orjson.loads(r.value or b"") for r in out.on(settings.topic_identity_merges)]
    assert merge["kind"] == "merge" and merge["survivor"] == docs[2]["customer_id"]
    # Written in the same call: the survivor's journey holds all three (the loser's was folded in).
    (journey,) = store.model.journeys.journeys.values()
    assert set(journey.timeline) == {"e1", "e2", "e3"}

    assert sample(m, "journeys_events_in_total", channel="web") == 2
    assert sample(m, "journeys_events_in_total", channel="phone") == 1
    assert sample(m, "journeys_touchpoints_written_total") == 3
    assert sample(m, "journeys_merges_total") == 1
    assert sample(m, "journeys_events_dead_lettered_total", reason="malformed_json") == 1
    assert sample(m, "journeys_batch_size_count", stage="stitch") == 1  # once per batch
    assert sample(m, "journeys_end_to_end_latency_seconds_count", step="journey") == 3


async def test_a_redelivered_batch_writes_nothing_again_and_replays_its_records(
    settings: StitcherSettings,
) -> None:
    store, first, again, m = ModelStore(settings), ListOutbox(), ListOutbox(), StitcherMetrics()
    handler = StitchHandler(settings, store, m)
    await handler.handle(batch(), first)  # type: ignore[arg-type]
    await handler.handle(batch(), again)  # type: ignore[arg-type]

    def view(out: ListOutbox) -> list[tuple[str, bytes | None, Any]]:
        return [
            (
                r.topic,
                r.key,
                orjson.loads(r.value or b"null").get("record_id")
                if r.topic == settings.topic_identity_merges
                else None,
            )
            for r in out.sent
        ]

    survivor = [r.key for r in first.on(settings.topic_stitched_events)][-1]
    # Same customers (the survivor's, now that e1's customer is merged away), same merge record.
    assert [r.key for r in again.on(settings.topic_stitched_events)] == [survivor] * 3
    assert view(again)[-1] == view(first)[-1]
    assert sample(m, "journeys_touchpoints_written_total") == 3
    assert sample(m, "journeys_duplicates_total") == 3
    (journey,) = store.model.journeys.journeys.values()
    assert len(journey.timeline) == 3


async def test_a_failed_script_call_queues_nothing(settings: StitcherSettings) -> None:
    store, out, m = ModelStore(settings), ListOutbox(), StitcherMetrics()
    store.failing = True
    with pytest.raises(ConnectionError):
        await StitchHandler(settings, store, m).handle(batch(), out)  # type: ignore[arg-type]
    # The loop retries the whole batch: nothing (not even its dead letter) may have gone out already.
    assert out.sent == []
