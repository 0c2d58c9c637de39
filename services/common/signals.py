"""Running a service's main coroutine until SIGINT or SIGTERM asks it to stop.

The signal only sets ``stop``: the Kafka loop (``services.common.kafka_loop``) then finishes the batch in
flight, commits it and returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[Any]]) -> None:
    """Run ``main(stop)`` in a fresh event loop; SIGINT/SIGTERM set ``stop`` (graceful: finish, commit)."""
    import signal

    async def _wrapped() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(_wrapped())
