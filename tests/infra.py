"""Where integration tests get Kafka and Redis from (see tests/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import Infra


@contextmanager
def provide_infra() -> Iterator[Infra]:
    bootstrap, redis_url = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("REDIS_URL")
    if bootstrap and redis_url:
        yield Infra(bootstrap, redis_url)
        return
    raise RuntimeError("set KAFKA_BOOTSTRAP_SERVERS and REDIS_URL (local stack fallback not built yet)")
