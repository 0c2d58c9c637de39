"""A minimal stitcher-shaped faust worker for the foundation smoke test (run as a subprocess).

It consumes the test's channel-events topic and writes each event, keyed by its event_id, under the
test's Redis key prefix: proof that Kafka -> faust -> Redis works end to end on this machine.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import faust
import orjson
import redis.asyncio as aioredis


def smoke_key(prefix: str, event_id: str) -> str:
    return f"{prefix}:smoke:{event_id}"


def create_app(bootstrap: str, redis_url: str, topic: str, prefix: str, datadir: str) -> faust.App:
    app = faust.App(
        f"smoke-{prefix}",
        broker=f"kafka://{bootstrap}",
        datadir=datadir,
        web_enabled=False,
        autodiscover=False,
        store="memory://",
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=1,
    )
    source = app.topic(topic, value_serializer="raw")
    store = aioredis.Redis.from_url(redis_url)

    @app.agent(source)
    async def write(stream: Any) -> None:
        async for raw in stream:
            event = orjson.loads(raw)
            # SET NX: a redelivered event changes nothing (idempotent out).
            await store.set(smoke_key(prefix, event["event_id"]), raw, nx=True)

    return app


def main() -> None:
    env = os.environ
    app = create_app(
        env["KAFKA_BOOTSTRAP_SERVERS"],
        env["REDIS_URL"],
        env["JOURNEYS_TOPIC_CHANNEL_EVENTS"],
        env["JOURNEYS_KEY_PREFIX"],
        env["SMOKE_DATADIR"],
    )
    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    main()
