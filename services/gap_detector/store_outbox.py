"""The detector's alert outboxes in Redis after the save (the transactional outbox, processor.py): what the
broker acknowledged leaves its outbox and the outbox index, and a sweep claims what a failed or dead worker
saved and did not publish. The save itself writes each alert with its customer's state (store.py); this is
everything that comes after it, kept apart so that store.py stays the load and save. ``OutboxQueries`` is a
base of DetectorStore, whose __init__ registers the script it declares."""

from __future__ import annotations

import orjson
from redis.commands.core import AsyncScript

from services.gap_detector.script_calls import ClaimOutboxCall
from services.gap_detector.store_slots import Item, SlotCalls
from services.gap_detector.store_types import OutboxEntry


class OutboxQueries(SlotCalls):
    recent_max: int
    _claim_outbox: AsyncScript

    def _box(self, cid: str) -> str:
        return self.keys.customer_outbox(cid) if cid else self.keys.dropoff_outbox

    def _recent(self, entries: list[OutboxEntry], now_ms: int) -> Item:
        """The recent-alerts index (GET /api/v1/alerts) and its documents, kept bounded (the save notes its
        alerts too, store.py)."""
        k = self.keys
        if not entries:
            return (k.recent_alerts, [], None)
        return (
            k.recent_alerts,
            [
                ["ZADD", k.recent_alerts, *(x for e in entries for x in (now_ms, e.alert_id))],
                ["HSET", k.alerts_by_id, *(x for e in entries for x in (e.alert_id, e.doc.decode()))],
                ["TRIM", k.recent_alerts, k.alerts_by_id, self.recent_max],
            ],
            None,
        )

    async def published(self, entries: list[OutboxEntry], score: int, now_ms: int | None = None) -> None:
        """The broker acknowledged these: remove them from their outboxes (unless a newer version of the
        alert was saved meanwhile) and from the index (unless re-armed). ``score``: their index score when
        claimed or saved; ``now_ms``: also note them as recent alerts (a sweep's, which the save did not)."""
        if not entries:
            return
        k = self.keys
        boxes: dict[str, list[str]] = {}
        for e in entries:
            if not e.legacy:
                boxes.setdefault(e.cid, []).extend((e.alert_id, e.doc.decode()))
        items: list[Item] = [
            (self._box(cid), [["HDELEQ", self._box(cid), *flat]], None) for cid, flat in boxes.items()
        ]
        items.append(
            (k.alerts_outbox, [["ZREMEQ", k.alerts_outbox, score, *(e.member for e in entries)]], None)
        )
        if now_ms is not None:
            items.append(self._recent(entries, now_ms))
        await self._run(items)

    async def claim_outbox(
        self, now_ms: int, lease_ms: int, limit: int
    ) -> list[tuple[str, OutboxEntry | None]]:
        """Outbox index entries past their grace (their worker failed or died after saving), leased to this
        worker for ``lease_ms`` so that concurrent sweeps do not both publish them, each with the alert as
        its outbox holds it now (None: gone, published already)."""
        claim = ClaimOutboxCall(self.keys.alerts_outbox, now_ms, lease_ms, limit)
        members = [m.decode() for m in await self._claim_outbox(keys=claim.keys(), args=claim.argv())]
        if not members:
            return []
        # A member left by the version that kept the alert JSON itself in the index is published as it is.
        legacy = {
            m: OutboxEntry("", orjson.loads(m)["alert_id"], m.encode(), legacy=True)
            for m in members
            if m.startswith("{")
        }
        pipe = self.r.pipeline(transaction=False)
        split = [m.rpartition("|") for m in members if m not in legacy]
        for cid, _, aid in split:
            pipe.hget(self._box(cid), aid)
        found = iter(await pipe.execute())
        out: list[tuple[str, OutboxEntry | None]] = []
        for m in members:
            if m in legacy:
                out.append((m, legacy[m]))
                continue
            cid, _, aid = m.rpartition("|")
            doc = next(found)
            out.append((m, None if doc is None else OutboxEntry(cid, aid, bytes(doc))))
        return out

    async def forget_outbox(self, members: list[str], score: int) -> None:
        """Index entries whose alert is gone from its outbox (published already)."""
        if members:
            await self._run(
                [(self.keys.alerts_outbox, [["ZREMEQ", self.keys.alerts_outbox, score, *members]], None)]
            )
