"""A minimal stitcher-shaped worker on the project's one Kafka loop (run as a subprocess by the smoke test).

It consumes the test's channel-events topic and writes each event, keyed by its event_id, under the
test's Redis key prefix: proof that Kafka -> the loop -> Redis works end to end on this machine.
"""

from __future__ import annotations

import asyncio

import orjson
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from services.common.kafka_loop import KafkaLoop, Outbox, Record
from services.common.loop_metrics import LoopMetrics
from services.common.settings import CommonSettings
from services.common.signals import run_until_signalled


def smoke_key(prefix: str, event_id: str) -> str:
    return f"{prefix}:smoke:{event_id}"


class SmokeHandler:
    def __init__(self, store: aioredis.Redis, prefix: str) -> None:
        self.store, self.prefix = store, prefix

    async def handle(self, records: list[Record], out: Outbox) -> None:
        for record in records:
            event = orjson.loads(record.value or b"")
            # SET NX: a redelivered event changes nothing (idempotent out).
            await self.store.set(smoke_key(self.prefix, event["event_id"]), record.value or b"", nx=True)


async def main(stop: asyncio.Event) -> None:
    settings = CommonSettings()
    metrics = LoopMetrics.register(CollectorRegistry())
    store = aioredis.Redis.from_url(settings.redis_url)
    loop = KafkaLoop(
        settings,
        group_id=f"smoke-{settings.key_prefix}",
        topics=[settings.topic_channel_events],
        handler=SmokeHandler(store, settings.key_prefix),
        metrics=metrics,
    )
    try:
        await loop.run(stop)
    finally:
        await store.aclose()


if __name__ == "__main__":
    run_until_signalled(main)
