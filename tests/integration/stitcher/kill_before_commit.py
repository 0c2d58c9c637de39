"""A stitcher worker that dies by SIGKILL once its first batch is handled but before that batch's offsets
are committed: its Redis writes and produced records exist, its commit never happens (run as a
subprocess by test_worker.py; configured by the same environment as `journeys stitcher`)."""

from __future__ import annotations

import functools
import os
import signal

from services.common.kafka_loop import Offsets
from services.common.signals import run_until_signalled
from services.stitcher.cli import load_settings
from services.stitcher.metrics import StitcherMetrics
from services.stitcher.worker import main


def die(_offsets: Offsets) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    run_until_signalled(functools.partial(main, load_settings(), StitcherMetrics(), before_commit=die))
