"""What the detector's Redis adapter (store.py) loads and saves: a customer as loaded, a batch's writes, and
the worker's cache of customers' decoded state. No I/O here."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
from redis.exceptions import TryAgainError

from services.gap_detector.core.logic import TimerOp
from services.gap_detector.core.state import CustomerState, EncodedBuffer, decode_state

DROPOFF_TTL_S = 3 * 86_400  # stalls land in a cell up to an SLA after its minute
OUTBOX_GRACE_MS = 10_000  # the saving worker publishes at once; a sweep takes what is left after this
pack = msgspec.msgpack.Encoder().encode


class StateConflict(TryAgainError):
    """A customer's state changed in Redis between this batch's load and its save (another worker fired a
    stall of it, or folded a merge into it): nothing of that customer was written; the batch is retried
    from the load (a transient fault). ``failed``: the customers refused (on Redis Cluster, the others of
    the batch were saved, and their redelivered events change nothing on the retry)."""

    def __init__(self, message: str, failed: set[str]) -> None:
        super().__init__(message)
        self.failed = failed
        self.retry: list[Any] = []  # what the caller may redo at once (claimed timers of refused customers)


def pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """An HGETALL-style flat reply as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


@dataclass(slots=True)
class Loser:
    """A merged-away customer with detector state left to fold into its survivor, as loaded."""

    cid: str
    state: CustomerState
    open_docs: dict[bytes, bytes]  # its open-alert hash (the documents move to the survivor)
    token: str  # field 'n' of its state hash when loaded: it is deleted only if still that


@dataclass(slots=True)
class Loaded:
    """A customer as loaded: the survivor's state, unfolded losers, and what was stored (for diffs)."""

    cid: str
    state: CustomerState
    losers: list[Loser] = field(default_factory=list)
    stored_timers: dict[str, int] = field(default_factory=dict)
    stored_fields: dict[bytes, bytes] = field(default_factory=dict)  # the state hash as it was
    buffer: EncodedBuffer | None = None  # how its buffer was encoded last (when this worker wrote it)


def decoded(
    det: list[bytes], open_flat: list[bytes]
) -> tuple[CustomerState, dict[bytes, bytes], dict[bytes, bytes]]:
    """A customer of load.lua's reply: its state, its state hash and its open-alert hash."""
    fields, open_docs = pairs(det), pairs(open_flat)
    return decode_state(fields, None, open_docs), fields, open_docs


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An alert saved to an outbox (its customer's, or the drop-off one when ``cid`` is '')."""

    cid: str
    alert_id: str
    doc: bytes
    alert: dict[str, Any] | None = field(default=None, compare=False)  # the document decoded, when at hand
    legacy: bool = False  # an index member of the version before outboxes per customer: the JSON itself

    @property
    def member(self) -> str:
        """Its member of the outbox index (Keys.alerts_outbox)."""
        return self.doc.decode() if self.legacy else f"{self.cid}|{self.alert_id}"


@dataclass(slots=True)
class Save:
    """Everything one batch writes (DetectorStore.save)."""

    customers: list[Loaded] = field(default_factory=list)
    write_state: set[str] = field(default_factory=set)  # customers an event was applied to
    new_alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # cid -> alerts
    aggregate_alerts: list[dict[str, Any]] = field(default_factory=list)
    dropoff_alerted: list[tuple[str, int]] = field(default_factory=list)  # (cell, minute) spikes raised
    outbox: list[OutboxEntry] = field(default_factory=list)  # the alerts to publish once saved
    closed: dict[str, list[str]] = field(default_factory=dict)
    adopted: dict[str, dict[str, bytes]] = field(default_factory=dict)  # cid -> open alerts a split moved in
    split_from: set[str] = field(default_factory=set)  # customers a split took marks from (fields to drop)
    cells: dict[str, dict[tuple[str, int], list[int]]] = field(default_factory=dict)  # cid -> increments
    finished_timers: dict[str, list[str]] = field(default_factory=dict)  # customer -> in-flight members
    extra_timers: dict[str, TimerOp] = field(default_factory=dict)  # superseded-stall member -> its op
    docs: dict[int, bytes] = field(default_factory=dict)  # id(alert) -> its JSON, encoded once per batch
    token: bytes = field(default_factory=lambda: os.urandom(8).hex().encode())  # field 'n' of what it writes
    # Per customer, staged by DetectorStore.stage: its truth (state, open alerts, compare-and-set), index
    # entries to add before it is written and to drop after, and merged-away customers to delete after.
    truth: dict[str, list[list[Any]]] = field(default_factory=dict)
    index_before: dict[str, list[list[Any]]] = field(default_factory=dict)
    index_after: dict[str, list[list[Any]]] = field(default_factory=dict)
    releases: dict[str, list[list[Any]]] = field(default_factory=dict)
    staged: dict[str, Cached | None] = field(default_factory=dict)  # customer -> its state once written

    def add_cells(self, cid: str, cells: dict[tuple[str, int], list[int]]) -> None:
        mine = self.cells.setdefault(cid, {})
        for k, (v, d) in cells.items():
            acc = mine.setdefault(k, [0, 0])
            acc[0] += v
            acc[1] += d

    def doc(self, alert: dict[str, Any]) -> bytes:
        """The alert's JSON as published (encoded once for Kafka and the Redis hashes)."""
        encoded = self.docs.get(id(alert))
        if encoded is None:
            encoded = self.docs[id(alert)] = orjson.dumps(alert)
        return encoded


@dataclass(slots=True)
class Cached:
    """A customer's state as this worker saved (or found) it, and the token its state hash holds then."""

    token: bytes
    state: CustomerState
    fields: dict[bytes, bytes]
    buffer: EncodedBuffer


class StateCache:
    """Least recently used customers' decoded state, so a batch need not read and decode it again while
    Redis still holds exactly that: every save that changes a state hash writes a fresh random token into
    it (field ``n``), and load.lua returns the hash only when the token differs (another worker fired a
    stall or folded a merge, the customer was erased, or this worker never saw it).

    ``take`` removes the entry: a batch mutates the state in place, and only a successful save puts it back,
    so a failed batch leaves nothing half-applied here."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[str, Cached] = OrderedDict()
        self.hits = self.misses = 0

    def take(self, cid: str) -> Cached | None:
        return self.items.pop(cid, None)

    def put(self, cid: str, cached: Cached) -> None:
        if self.size <= 0:
            return
        self.items[cid] = cached
        if len(self.items) > self.size:
            self.items.popitem(last=False)
