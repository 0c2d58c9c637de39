"""The detector follows an admin's split (docs/gap-detector.md, "Splits"), on one Redis and on Redis
Cluster: a real processor reads the split record as the stitcher publishes it (identity_merge 1.2) after
moving the journey, and the open stall alert raised on the separated person's event ends under the new
customer, with its event and mark; read again it changes nothing; the undo folds it all back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from services.common.redis_conn import connect_sync
from services.gap_detector.core.alerts import alert_id
from services.stitcher.core.split import split_merge_record
from tests.conftest import Infra
from tests.integration.gap_detector.harness import stitched
from tests.integration.gap_detector.processors import Proc

pytestmark = pytest.mark.integration

T0 = 1_793_599_980_000
MIN = 60_000
KEPT, NEW = "c_000000000000c0c0", "c_000000000000d0d0"
PAY = {"type": "purchase", "stage": "payment"}  # sla 1 h
SIGNUP = {"type": "onboarding", "stage": "signup"}  # sla 1 d
SPLIT = {
    "split_id": "s_00000000000000e1",
    "customer": KEPT,
    "new_customer": NEW,
    "generation": 1,
    "identifier_types": ["email"],
    "by": "ops-admin",
}


@pytest.fixture(params=["single", "cluster"])
def redis_url(request: pytest.FixtureRequest, infra: Infra, key_prefix: str) -> Iterator[str]:
    url = infra.redis_url if request.param == "single" else request.getfixturevalue("redis_cluster")
    yield url
    client = connect_sync(url)
    for key in client.scan_iter(match=f"{key_prefix}:*", count=1000):
        client.delete(key)
    client.close()


async def read(p: Proc, action: str) -> int:
    doc = split_merge_record({**SPLIT, "undone_by": "ops-admin"}, action, T0)
    return await p.proc.on_merges([p.record("identity-merges", KEPT, doc)], p)


def text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def held(p: Proc, cid: str) -> tuple[list[str], set[str], list[str]]:
    """A customer's buffered event ids, open alert ids and timer wheel entries, as Redis holds them."""
    raw = await p.client.hget(p.keys.detector_state(cid), "buf")
    opened = await p.client.hkeys(p.keys.open_alerts(cid))
    timers = [text(t) for t in await p.client.zrange(p.keys.timers, 0, -1)]
    return (
        [e[1] for e in orjson.loads(raw or b"[]")],
        {text(a) for a in opened},
        [t for t in timers if t.startswith(cid)],
    )


async def snapshot(p: Proc) -> list[Any]:
    return [await p.client.hgetall(p.keys.detector_state(c)) for c in (KEPT, NEW)] + [
        await p.client.hgetall(p.keys.open_alerts(c)) for c in (KEPT, NEW)
    ]


async def test_an_open_alert_follows_the_split_and_comes_back_with_the_undo(
    redis_url: str, key_prefix: str
) -> None:
    p = Proc(redis_url, key_prefix)
    # One customer that is two people: 'a' is the kept person's, 'x' (a payment, stalled) the other's.
    await p.events(
        [stitched("a", KEPT, T0, "web", intent="billing"), stitched("x", KEPT, T0 + MIN, "app", journey=PAY)]
    )
    assert await p.tick_at(T0 + 62 * MIN) == 1
    stall = alert_id("stall", KEPT, "purchase", "x")
    assert [a["alert_id"] for a in p.published] == [stall]
    # A sign-up of the separated person is pending its own stall timer when the split happens.
    await p.events([stitched("y", KEPT, T0 + 63 * MIN, "app", journey=SIGNUP)])
    # The stitcher splits: its graph and journey first (the new customer's timeline holds x and y), then
    # the record. An event of the new customer is read before the record.
    await p.client.zadd(p.keys.timeline(NEW), {"x": T0 + MIN, "y": T0 + 63 * MIN, "n": T0 + 64 * MIN})
    await p.events([stitched("n", NEW, T0 + 64 * MIN, "app", intent="billing")])
    published = len(p.published)

    assert await read(p, "split") == 0
    assert await held(p, KEPT) == (["a"], set(), [])
    assert not [f for f in await p.client.hkeys(p.keys.detector_state(KEPT)) if text(f).startswith("j:")]
    assert await held(p, NEW) == (["x", "y", "n"], {stall}, [f"{NEW}|onboarding"])
    assert len(p.published) == published  # moved, not raised again
    once = await snapshot(p)
    assert await read(p, "split") == 0  # redelivered: changes nothing
    assert await snapshot(p) == once

    # The undo: the stitcher joins them (alias) and publishes a merge record; the detector folds it back.
    await p.alias(KEPT, NEW)
    await read(p, "undo")
    buf, opened, _ = await held(p, KEPT)
    assert buf == ["a", "x", "y", "n"] and opened == {stall}
    assert await held(p, NEW) == ([], set(), [])
    after_undo = await snapshot(p)
    assert await read(p, "split") == 0  # the split read again after its undo: they are one, nothing moves
    assert await snapshot(p) == after_undo
    await p.close()
