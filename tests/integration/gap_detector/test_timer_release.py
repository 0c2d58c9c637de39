"""A fire that keeps losing compare-and-set to other workers hands its timers back at once (real Redis):
the retried tick, or another worker, claims them now, not after the 30 s lease."""

from __future__ import annotations

import pytest

from services.common.keys import Keys
from services.common.redis_conn import connect
from services.gap_detector.store_claims import ClaimQueries
from tests.conftest import Infra

pytestmark = pytest.mark.integration
LEASE_MS = 30_000


async def test_released_timers_are_claimed_again_at_once(infra: Infra, key_prefix: str) -> None:
    client = connect(infra.redis_url)
    keys = Keys(key_prefix)
    claims = ClaimQueries(client, keys)
    await client.zadd(keys.timers, {"c1|purchase": 1_000, "c2|purchase": 2_000, "c3|purchase": 9_000})
    claimed = await claims.claim_timers(5_000, 100, LEASE_MS, 10)
    assert sorted(claimed) == [("c1", "purchase", 1_000), ("c2", "purchase", 2_000)]
    # Leased: nobody else gets them before the lease ends ...
    assert await claims.claim_timers(5_000, 200, LEASE_MS, 10) == []
    # ... unless the worker hands back the ones it could not fire; a timer it fired stays its own.
    await claims.release_timers([("c2", "purchase", 2_000)])
    again = await claims.claim_timers(5_000, 300, LEASE_MS, 10)
    assert [(c, j) for c, j, _ in again] == [("c2", "purchase")]
    # Released twice, or after another worker took it: nothing is added back that is not in flight.
    await client.zrem(keys.timers_inflight, "c2|purchase")
    await claims.release_timers([("c2", "purchase", 2_000)])
    assert await client.zscore(keys.timers_inflight, "c2|purchase") is None
    await client.delete(keys.timers, keys.timers_inflight)
    await client.aclose()
