"""Split, undo, allow and "why" as the admin tools call them (``journeys split``/``journeys why`` and the
API's identity routes): raw identifiers in, masked values out, the split records published on identity-merges.

Raw identifier values only ever pass through here on their way to their keyed hashes (the same
normalisation and HMAC keys as the stitcher, previous keys of a rotation included); what leaves is the
identifier's type and its mask, read from the customers' journeys (never the value, never the key).
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from services.common.kafka_config import producer_config
from services.common.keys import Keys
from services.common.redis_conn import AsyncClient
from services.common.runtime import ce_headers
from services.common.settings import CommonSettings
from services.common.timeutil import format_ms, now_ms
from services.stitcher.adapters.split_store import SplitStore
from services.stitcher.core.identifiers import IDENTIFIER_TYPES, Denylist, id_key, is_junk, normalise
from services.stitcher.core.identity import Evidence, id_type_of
from services.stitcher.core.split import SplitRefused, split_merge_record
from services.stitcher.core.stitch import MERGE_CE_TYPE
from services.stitcher.core.why import explain

SETTLE_S = 2.0  # a worker's batch resolved before the split is written well within this (split_store.py)


class PublishFailed(RuntimeError):
    """The broker did not acknowledge the split record in time (the split is stored; repeat to publish)."""


class MergePublisher:
    """identity-merges producer for split records; waits for the broker's acknowledgement."""

    def __init__(self, settings: CommonSettings, timeout_s: float = 10.0) -> None:
        self.settings, self.timeout_s, self.topic = settings, timeout_s, settings.topic_identity_merges
        self._producer: Producer | None = None

    async def publish(self, record: Mapping[str, Any]) -> None:
        if self._producer is None:
            self._producer = Producer(
                {**producer_config(self.settings), "message.timeout.ms": int(self.timeout_s * 1000)}
            )
        producer, loop = self._producer, asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            def settle() -> None:
                if not done.done():
                    done.set_exception(PublishFailed(err.str())) if err else done.set_result(None)

            loop.call_soon_threadsafe(settle)

        at = format_ms(int(record["recorded_at_ms"]))
        headers: list[tuple[str, str | bytes | None]] = [
            *ce_headers(MERGE_CE_TYPE, b"journeys/split", str(record["record_id"]), at)
        ]
        producer.produce(
            self.topic,
            key=str(record["survivor"]).encode(),
            value=orjson.dumps(record),
            headers=headers,
            on_delivery=delivered,
        )
        await asyncio.to_thread(producer.flush, self.timeout_s)
        await asyncio.wait_for(done, timeout=1.0)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.timeout_s)
            self._producer = None


def candidate_keys(settings: CommonSettings, id_type: str, raw: str) -> list[str]:
    """The identifier's possible keys (current HMAC key first, then the ones it replaced)."""
    if id_type not in IDENTIFIER_TYPES:
        raise SplitRefused(f"{id_type} is not an identifier type the identity graph links on")
    value = normalise(id_type, raw, phone_region=settings.phone_region)
    if value is None or is_junk(id_type, value, Denylist.from_settings(settings)):
        raise SplitRefused(f"that {id_type} is not usable (unparseable, or a placeholder never stitched)")
    secrets = [settings.secret_bytes(), *settings.previous_secret_bytes()]
    return list(dict.fromkeys(id_key(s, id_type, value) for s in secrets))


class SplitService:
    def __init__(
        self,
        settings: CommonSettings,
        client: AsyncClient,
        max_touchpoints: int,
        publisher: MergePublisher | None,
        settle_s: float = SETTLE_S,
    ) -> None:
        self.settings, self.client, self.publisher, self.settle_s = settings, client, publisher, settle_s
        self.keys = Keys(settings.key_prefix)
        self.store = SplitStore(client, self.keys, max_touchpoints, settings.retention_ms)

    async def _publish(self, rec: Mapping[str, Any], action: str) -> None:
        if self.publisher is not None:
            await self.publisher.publish(split_merge_record(rec, action, now_ms()))

    async def _key_of(self, cid: str, id_type: str, raw: str) -> str:
        ids = await self._ids(cid)
        for key in candidate_keys(self.settings, id_type, raw):
            if key in ids:
                return key
        raise SplitRefused(f"that {id_type} is not part of customer {cid}")

    async def _known_key(self, id_type: str, raw: str) -> str:
        for key in candidate_keys(self.settings, id_type, raw):
            if await self.client.exists(self.keys.identifier(key)):
                return key
        raise SplitRefused(f"no customer has that {id_type}")

    async def _ids(self, cid: str) -> set[str]:
        got = await self.store.graph(cid)
        if got is None:
            raise SplitRefused("no such customer")
        return got[0]

    async def masks(self, cids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for cid in cids:
            raw = await self.client.hgetall(self.keys.masked(cid))
            out.update({_s(k): _s(v) for k, v in raw.items()})
        return out

    async def split(
        self,
        cid: str,
        *,
        identifiers: Sequence[tuple[str, str]] = (),
        merge: tuple[str, str] | None = None,
        by: str = "",
    ) -> dict[str, Any]:
        """Separate the raw identifiers (type, value) from ``cid``, or undo the merge (event id, loser)."""
        cid = await self.store.canonical(cid)
        # Keys known to the graph, not necessarily the customer's: a repeat after the split finds its
        # record by them (core/split.py split_id) and finishes it; a first split checks they are its.
        separate = {await self._known_key(t, v) for t, v in identifiers} if identifiers else None
        rec = await self.store.split(
            cid,
            separate=separate,
            merge=merge,
            by=by or getpass.getuser(),
            now_ms=now_ms(),
            publish=lambda r: self._publish(r, "split"),
            settle_s=self.settle_s,
        )
        return await self.view(rec)

    async def undo(self, sid: str, by: str = "") -> dict[str, Any]:
        rec = await self.store.undo(
            sid, by=by or getpass.getuser(), now_ms=now_ms(), publish=lambda r: self._publish(r, "undo")
        )
        return await self.view(rec)

    async def allow(self, a: str, b: str) -> int:
        return await self.store.allow(await self.store.canonical(a), await self.store.canonical(b))

    async def record(self, sid: str) -> dict[str, Any] | None:
        rec = await self.store.record(sid)
        return None if rec is None else await self.view(rec)

    async def view(self, rec: Mapping[str, Any]) -> dict[str, Any]:
        """A split record as people see it: identifier types and masks, never keys."""
        masks = await self.masks([rec["customer"], rec["new_customer"]])
        return {
            "split_id": rec["split_id"],
            "state": rec["state"],
            "customer": rec["customer"],
            "new_customer": rec["new_customer"],
            "by": rec.get("by"),
            "at": format_ms(int(rec["at_ms"])),
            "kept": shown(rec["keep"], masks),
            "moved": shown(rec["move"], masks),
            "undo": f"POST /api/v1/splits/{rec['split_id']}/undo",
        }

    async def why(self, cid: str, id_type: str | None = None, raw: str | None = None) -> dict[str, Any]:
        """Why the identifier is part of the customer (the links from its anchor), or every link."""
        cid = await self.store.canonical(cid)
        got = await self.store.graph(cid)
        if got is None:
            raise SplitRefused("no such customer")
        ids, evidence, _ = got
        masks = await self.masks([cid])
        if id_type is None or raw is None:
            links = sorted(evidence.items(), key=lambda kv: (kv[1].occurred_ms, kv[0]))
            return {"customer_id": cid, "links": [link_view(e, ev, masks) for e, ev in links]}
        key = await self._key_of(cid, id_type, raw)
        return {
            "customer_id": cid,
            "identifier": shown([key], masks)[0],
            "links": [link_view(e, ev, masks) for e, ev in explain(cid, ids, evidence, key)],
        }


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def shown(keys: Iterable[str], masks: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"type": id_type_of(k), "masked": masks.get(k, "•••")} for k in sorted(keys)]


def link_view(event_id: str, e: Evidence, masks: Mapping[str, str]) -> dict[str, Any]:
    rules = {
        "mint": "first seen: a new customer",
        "link": "a new identifier on an event with known ones",
        "merge": "an event naming two customers merged them",
    }
    return {
        "event_id": event_id,
        "rule": e.rule,
        "why": rules.get(e.rule, e.rule),
        "occurred_at": format_ms(e.occurred_ms),
        "recorded_at": format_ms(e.recorded_ms),
        "with": shown(e.via, masks),
        "linked": shown(e.linked, masks),
        "merged": list(e.merged),
    }
