"""Two detector workers on the two customers of a merge, interleaved at the worst moments, on one Redis
and on Redis Cluster: no detector state update is lost, no alert is published twice.

The lost update (issue 11): a worker whose batch loaded the loser L before the stitcher merged it wrote an
event to L while another worker, loading the survivor S after the merge, folded L's older state into S
and deleted L unconditionally, with the event just written: a later event of S then missed it as its
predecessor. L is now deleted only if it still holds the state that was folded; otherwise it stays
and S's next load folds it again (idempotently)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from services.common.redis_conn import connect_sync
from services.gap_detector.core.alerts import alert_id
from services.gap_detector.store_types import StateConflict
from tests.conftest import Infra
from tests.integration.gap_detector.harness import stitched
from tests.integration.gap_detector.processors import Proc

pytestmark = pytest.mark.integration

T0 = 1_793_599_980_000
MIN = 60_000
LOSER, SURVIVOR = "c_000000000000a0a0", "c_000000000000b0b0"


@pytest.fixture(params=["single", "cluster"])
def redis_url(request: pytest.FixtureRequest, infra: Infra, key_prefix: str) -> Iterator[str]:
    url = infra.redis_url if request.param == "single" else request.getfixturevalue("redis_cluster")
    yield url
    client = connect_sync(url)
    for key in client.scan_iter(match=f"{key_prefix}:*", count=1000):
        client.delete(key)
    client.close()


def contact(eid: str, cid: str, minute: int, channel: str, intent: str) -> dict[str, Any]:
    return stitched(eid, cid, T0 + minute * MIN, channel, intent=intent)


async def buffered(p: Proc, cid: str) -> list[str]:
    raw = await p.client.hget(p.keys.detector_state(cid), "buf")
    return [e[1] for e in orjson.loads(raw or b"[]")]


async def test_an_event_written_to_the_loser_while_it_is_folded_is_not_lost(
    redis_url: str, key_prefix: str
) -> None:
    first, second = Proc(redis_url, key_prefix), Proc(redis_url, key_prefix)
    await first.events([contact("a", LOSER, 0, "web", "x")])
    first_save, second_save = first.store.save, second.store.save
    held: list[tuple[Any, int]] = []

    async def first_saves_late(batch: Any, now: int) -> None:
        # The first worker has loaded L for event b (no merge yet). Now the stitcher merges L into S, and
        # the second worker loads S with L's state (a) to fold it...
        held.append((batch, now))
        await first.alias(SURVIVOR, LOSER)
        await second.events([contact("c", SURVIVOR, 2, "web", "y")])

    async def first_saves_between(batch: Any, now: int) -> None:
        # ...and the first worker's save of b to L lands between the second worker's load and its save.
        await first_save(*held[0])
        await second_save(batch, now)

    first.store.save, second.store.save = first_saves_late, first_saves_between  # type: ignore[method-assign,assignment]
    await first.events([contact("b", LOSER, 1, "app", "x")])
    assert held, "the first worker saved without the interleaving"
    assert await buffered(first, LOSER) == ["a", "b"]  # not deleted: it changed since it was folded
    second.store.save = second_save  # type: ignore[method-assign]
    # S's next event folds L again: b is there, the predecessor of d (not a, nor lost).
    await second.events([contact("d", SURVIVOR, 3, "phone", "x")])
    [switch] = [a for a in second.published if a["type"] == "channel_switch"]
    assert switch["alert_id"] == alert_id("channel_switch", SURVIVOR, "d")
    assert switch["evidence"]["event_ids"] == ["b", "d"]
    assert await buffered(second, SURVIVOR) == ["a", "b", "c", "d"]
    assert not await second.client.exists(second.keys.detector_state(LOSER))
    await first.close()
    await second.close()


async def test_a_merge_folded_by_one_worker_while_another_writes_the_survivor(
    redis_url: str, key_prefix: str
) -> None:
    merger, writer = Proc(redis_url, key_prefix), Proc(redis_url, key_prefix)
    await writer.events([contact("a", LOSER, 0, "app", "x"), contact("s", SURVIVOR, 0, "web", "y")])
    await writer.alias(SURVIVOR, LOSER)
    merger_save = merger.store.save
    interfere = [True]

    async def survivor_written_meanwhile(batch: Any, now: int) -> None:
        if interfere and interfere.pop():  # the survivor's event lands between the merger's load and save
            await writer.events([contact("b", SURVIVOR, 1, "phone", "x")])
        await merger_save(batch, now)

    merger.store.save = survivor_written_meanwhile  # type: ignore[method-assign,assignment]
    with pytest.raises(StateConflict):
        await merger.merges([(SURVIVOR, LOSER)])
    await merger.merges([(SURVIVOR, LOSER)])  # the loop retries the batch: the fold is done already
    published = [a["alert_id"] for a in merger.published + writer.published]
    assert published == [alert_id("channel_switch", SURVIVOR, "b")]  # once, by the worker that saved it
    assert await buffered(writer, SURVIVOR) == ["a", "s", "b"]
    assert not await writer.client.exists(writer.keys.detector_state(LOSER))
    await merger.close()
    await writer.close()


async def test_a_stall_fires_in_its_tick_when_another_worker_writes_the_customer_meanwhile(
    redis_url: str, key_prefix: str
) -> None:
    firer, writer = Proc(redis_url, key_prefix), Proc(redis_url, key_prefix)
    pay = {"type": "purchase", "stage": "payment"}  # sla 1 h
    await writer.events([stitched("x", SURVIVOR, T0, "web", journey=pay)])
    firer_save = firer.store.save
    interfere = [True]

    async def written_meanwhile(batch: Any, now: int) -> None:
        if interfere and interfere.pop():  # an event of another intent lands between the fire's load and save
            await writer.events([contact("y", SURVIVOR, 1, "web", "other")])
        await firer_save(batch, now)

    firer.store.save = written_meanwhile  # type: ignore[method-assign,assignment]
    # The timer is leased to the firer: refused once, it fires at once again instead of after its lease.
    assert await firer.tick_at(T0 + 61 * MIN) == 1
    [stall] = firer.published
    assert stall["alert_id"] == alert_id("stall", SURVIVOR, "purchase", "x") and not interfere
    assert await firer.tick_at(T0 + 62 * MIN) == 0
    await firer.close()
    await writer.close()
