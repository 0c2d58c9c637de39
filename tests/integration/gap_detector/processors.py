"""Detector processors in-process against any Redis the URL names (single or cluster), no Kafka: alerts are
collected, the watermark set by hand, aliases written as the stitcher writes them. For the cluster test
and the merge-race test."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from bench.detector.core_bench import stitched_doc
from services.common.kafka_loop import Record
from services.common.keys import Keys
from services.common.redis_conn import AsyncClient, connect
from services.common.timeutil import parse_rfc3339_ms
from services.gap_detector.clock_store import ClockStore
from services.gap_detector.core.definitions import load_definitions
from services.gap_detector.core.logic import DetectorLogic
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.processor import DetectorProcessor, Evidence
from services.gap_detector.settings import GapDetectorSettings
from services.gap_detector.store import DetectorStore
from services.simulator.generator import SimConfig, generate

DAY = 86_400_000


class Proc:
    """One detector processor (a worker's core and adapters) and what it published."""

    def __init__(self, url: str, prefix: str, cache: int = 1000) -> None:
        self.settings = GapDetectorSettings.model_validate(
            {"REDIS_URL": url, "JOURNEYS_KEY_PREFIX": prefix, "JOURNEYS_TIMER_CLOCK": "event"}
        )
        self.client: AsyncClient = connect(url)
        self.keys = Keys(prefix)
        self.metrics = DetectorMetrics()
        self.store = DetectorStore(self.client, self.keys, self.settings.retention_ms, 1000, cache_size=cache)
        self.proc = DetectorProcessor(
            self.settings,
            DetectorLogic(load_definitions()),
            self.store,
            self.metrics,
            ClockStore(self.client, self.keys),
        )
        self.published: list[dict[str, Any]] = []
        self.fail_publish = 0  # publishes to refuse (a broker outage)
        self.offset = 0

    async def publish(self, alerts: list[dict[str, Any]], docs: list[bytes]) -> None:
        if self.fail_publish:
            self.fail_publish -= 1
            raise ConnectionError("broker unreachable")
        self.published.extend(alerts)

    def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        raise AssertionError(f"dead letter {reason}: {detail}")

    def record(self, topic: str, key: str, doc: dict[str, Any]) -> Record:
        self.offset += 1
        return Record(topic, 0, self.offset, key.encode(), orjson.dumps(doc), {}, 0)

    async def events(self, docs: list[dict[str, Any]]) -> int:
        records = [self.record("stitched-events", d["customer_id"], d) for d in docs]
        return await self.proc.on_events(records, self)

    async def merges(self, pairs: list[tuple[str, str]]) -> int:
        return await self.proc.on_merges(
            [self.record("identity-merges", s, merge_doc(s, loser)) for s, loser in pairs], self
        )

    async def alias(self, survivor: str, loser: str) -> None:
        """What the stitcher writes when it merges ``loser`` into ``survivor`` (chains compressed)."""
        members = await self.client.smembers(self.keys.aliases_of(loser))
        moved = {loser, *(m.decode() if isinstance(m, bytes) else str(m) for m in members)}
        for cid in moved:
            await self.client.set(self.keys.alias(cid), survivor)
        await self.client.sadd(self.keys.aliases_of(survivor), *moved)

    async def tick_at(self, watermark: int) -> int:
        await self.client.set(self.keys.watermark, watermark)
        return await self.proc.on_tick(self, Evidence())

    def count_scripts(self) -> dict[str, int]:
        """Count the store's script calls from now on (name -> calls, the cluster's pipelined ones too)."""
        calls: dict[str, int] = {}
        for name in ("_resolve", "_load", "_apply", "_claim_timers", "_claim_minutes", "_claim_outbox"):
            setattr(self.store, name, _Counted(name, getattr(self.store, name), calls))
        return calls

    def final(self) -> dict[str, tuple[Any, ...]]:
        """The last record per alert id, without the wall-clock fields."""
        last = {a["alert_id"]: a for a in self.published}
        return {
            aid: (
                a["type"],
                a["status"],
                a["severity"],
                a.get("customer_id"),
                tuple(a["evidence"].get("event_ids", ())),
                a["evidence"].get("minute"),
            )
            for aid, a in last.items()
        }

    async def close(self) -> None:
        await self.client.aclose()


class _Counted:
    """A script that counts its calls: called, or its SHA taken for a pipeline."""

    def __init__(self, name: str, script: Any, calls: dict[str, int]) -> None:
        self.name, self.inner, self.calls = name, script, calls

    def _count(self) -> None:
        self.calls[self.name] = self.calls.get(self.name, 0) + 1

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._count()
        return self.inner(*args, **kwargs)

    @property
    def sha(self) -> str:
        self._count()
        return str(self.inner.sha)

    @property
    def script(self) -> Any:
        return self.inner.script


def cid_of(text: str) -> str:
    return "c_" + hashlib.sha256(text.encode()).hexdigest()[:16]


def merge_doc(survivor: str, loser: str) -> dict[str, Any]:
    rid = "m_" + hashlib.sha256(f"{survivor}{loser}".encode()).hexdigest()[:16]
    return {
        "schema_version": "1.0",
        "record_id": rid,
        "kind": "merge",
        "survivor": survivor,
        "loser": loser,
        "event_id": "e",
        "identifier_types": ["email"],
        "occurred_at_ms": 1,
        "recorded_at_ms": 1,
    }


Step = tuple[str, Any]  # ("alias", (survivor, loser)) | ("merge", (survivor, loser)) | ("event", doc)


def population(customers: int, seed: int) -> tuple[list[Step], int]:
    """A simulated population as the stitcher would hand it on, in arrival order, with merges: a third of
    the customers are known under two identities until their middle event (the merging event), which
    merges one into the other (alternately the identity that came first, as an older cookie would, and
    the other); events stitched from then on carry the survivor. Returns the steps and the newest event
    time."""
    pop = generate(SimConfig(customers=customers, seed=seed), load_definitions())
    merging: dict[str, tuple[str, str, str, str]] = {}  # merging event id -> (true customer, a, b, survivor)
    for n, (cust, evs) in enumerate(sorted(pop.events.items())):
        if n % 3 == 0 and len(evs) >= 4:
            ordered = sorted(evs, key=lambda e: (e["occurred_at"], e["event_id"]))
            a, b = cid_of(cust + "/a"), cid_of(cust + "/b")
            merging[ordered[len(ordered) // 2]["event_id"]] = (cust, a, b, a if n % 2 else b)
    owner = {ev["event_id"]: cust for cust, evs in pop.events.items() for ev in evs}
    identities = {m[0]: (m[1], m[2]) for m in merging.values()}  # true customer -> its two identities
    merged: dict[str, str] = {}  # true customer -> survivor, once its merging event was stitched
    parity: dict[str, int] = {}
    steps: list[Step] = []
    newest = 0
    for rec in pop.records:
        if rec.value is None:
            continue
        eid = rec.value["event_id"]
        cust = owner[eid]
        t = parse_rfc3339_ms(rec.value["occurred_at"])
        newest = max(newest, t)
        if eid in merging and cust not in merged:
            _, a, b, survivor = merging[eid]
            loser = b if survivor == a else a
            merged[cust] = survivor
            steps.append(("alias", (survivor, loser)))
            steps.append(("event", stitched_doc(rec.value, survivor, t)))
            steps.append(("merge", (survivor, loser)))
            continue
        if cust in merged:
            cid = merged[cust]
        elif cust in identities:
            parity[cust] = parity.get(cust, 0) + 1
            cid = identities[cust][parity[cust] % 2]
        else:
            cid = cid_of(cust)
        steps.append(("event", stitched_doc(rec.value, cid, t)))
    return steps, newest


async def run(
    proc: Proc,
    steps: list[Step],
    newest: int,
    batch: int = 100,
    between: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """Feed the steps in batches as the worker does (aliases are in Redis before the batch is read;
    merges first, then events), the third batch's publish refused once and retried like the Kafka loop;
    then fire every stall and judge every minute, sweeping what the failed publish left in the outbox."""
    for n, start in enumerate(range(0, len(steps), batch)):
        chunk = steps[start : start + batch]
        for kind, what in chunk:
            if kind == "alias":
                await proc.alias(*what)
        merges = [what for kind, what in chunk if kind == "merge"]
        docs = [what for kind, what in chunk if kind == "event"]
        proc.fail_publish = 1 if n == 2 else 0
        for _ in range(2):
            try:
                if merges:
                    await proc.merges(merges)
                if docs:
                    await proc.events(docs)
                break
            except ConnectionError:
                continue
        if between is not None:
            await between(n)
    box = proc.keys.alerts_outbox
    assert await proc.client.zcard(box) > 0, "the failed publish left its alerts in the outbox"
    members = [bytes(m) for m in await proc.client.zrange(box, 0, -1)]  # type: ignore[arg-type]
    await proc.client.zadd(box, dict.fromkeys(members, 0))  # grace over
    quiet = 0
    while quiet < 2:
        quiet = quiet + 1 if await proc.tick_at(newest + 2 * DAY) == 0 else 0
