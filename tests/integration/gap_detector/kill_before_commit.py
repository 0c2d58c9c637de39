"""A gap detector worker that dies by SIGKILL once its first batch is handled but before that batch's
offsets are committed: its alerts are produced and its Redis writes made, its commit never happens (run as
a subprocess by test_sigkill.py; configured by the same environment as `journeys detector`)."""

from __future__ import annotations

import asyncio
import os
import signal

import redis.asyncio as aioredis

from services.common.kafka_loop import Offsets
from services.common.signals import run_until_signalled
from services.gap_detector.cli import load_settings
from services.gap_detector.core.definitions import load_definitions
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.worker import build


def die(_offsets: Offsets) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def main(stop: asyncio.Event) -> None:
    settings = load_settings()
    client = aioredis.Redis.from_url(settings.redis_url)
    loop, _ = build(
        settings, load_definitions(settings.definitions), DetectorMetrics(), client, before_commit=die
    )
    await loop.run(stop)


if __name__ == "__main__":
    run_until_signalled(main)
