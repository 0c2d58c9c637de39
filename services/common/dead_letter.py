"""The one builder of dead-letter records (docs/ARCHITECTURE.md, "Kafka headers").

value and key are the original bytes; headers say why (``dlq_reason``, ``dlq_detail`` — never an
identifier value), where from (topic, partition, offset) and, in ``dlq_id``, the source coordinates as one
deterministic string: a record dead-lettered twice (a crash between the DLQ flush and the offset commit
re-sends it; docs/operations.md, "Dead letters") carries the same ``dlq_id`` both times, so readers dedupe
on it. The original headers follow.

A copy must fit the broker (max.message.bytes, 1 MiB by default, is checked on the whole record): a
source record that fitted can outgrow it by our headers. So a copy larger than ``max_bytes`` is cut down —
original headers dropped first when they are large, then the key and the value truncated — and says so
in ``dlq_truncated`` (what was cut) and ``dlq_original_bytes`` (the value's size); ``dlq_source_*`` point
at the untouched original on its topic.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.common.outbox import OutRecord, Record

# Key + value + headers of a copy, at most: the broker's default max.message.bytes is 1,048,588 for the
# whole record batch; ~48 KB are left for the batch and record framing.
MAX_COPY_BYTES = 1_000_000
MAX_DETAIL = 512  # characters of dlq_detail
MAX_KEY = 1024  # bytes of a key kept in a truncated copy (the key only picks the DLQ partition)
Headers = list[tuple[str, bytes]]


def dlq_id(record: Record) -> str:
    """The source coordinates, ``<topic>/<partition>/<offset>``: equal for every copy of one input."""
    return f"{record.topic}/{record.partition}/{record.offset}"


def dead_letter(
    record: Record,
    dlq_topic: str,
    reason: str,
    detail: str,
    at_ms: int,
    extra: Sequence[tuple[str, bytes]] = (),
    max_bytes: int = MAX_COPY_BYTES,
) -> OutRecord:
    """The dead-letter copy of ``record`` (``extra``: more dlq_ headers, e.g. dlq_failed_topic)."""
    ours: Headers = [
        ("dlq_reason", reason.encode()),
        ("dlq_detail", detail[:MAX_DETAIL].encode()),
        ("dlq_id", dlq_id(record).encode()),
        ("dlq_source_topic", record.topic.encode()),
        ("dlq_source_partition", str(record.partition).encode()),
        ("dlq_source_offset", str(record.offset).encode()),
        ("dlq_at_ms", str(at_ms).encode()),
    ]
    ours += extra
    theirs = [(k, v) for k, v in record.headers.items() if not k.startswith("dlq_")]
    key, value = record.key, record.value
    if size(ours) + size(theirs) + len(key or b"") + len(value or b"") <= max_bytes:
        return OutRecord(dlq_topic, key, value, ours + theirs)
    return OutRecord(dlq_topic, *_cut(ours, theirs, key, value, max_bytes))


def size(headers: Sequence[tuple[str, bytes]]) -> int:
    return sum(len(k) + len(v) + 8 for k, v in headers)  # + varint framing per header, generously


def _cut(
    ours: Headers, theirs: Headers, key: bytes | None, value: bytes | None, max_bytes: int
) -> tuple[bytes | None, bytes | None, Headers]:
    """Key, value and headers of a copy cut down to ``max_bytes`` (our headers are always kept)."""
    cut: list[str] = []
    room = max_bytes - size(ours) - 96  # the two headers saying what was cut
    if theirs and size(theirs) > room // 2:
        theirs = []
        cut.append("headers")
    room -= size(theirs)
    keep = min(MAX_KEY, max(room, 0))
    if key is not None and len(key) > keep:
        key = key[:keep]
        cut.append("key")
    room -= len(key or b"")
    original = len(value or b"")
    if value is not None and original > max(room, 0):
        value = value[: max(room, 0)]
        cut.append("value")
    said = [("dlq_truncated", ",".join(cut).encode()), ("dlq_original_bytes", str(original).encode())]
    return key, value, ours + said + theirs


def stripped(copy: OutRecord) -> OutRecord:
    """A dead-letter copy the broker refused even so (its topic allows less than MAX_COPY_BYTES): only our
    headers and at most MAX_KEY bytes of the key are left, which any topic accepts."""
    ours = [
        (k, v)
        for k, v in copy.headers
        if k.startswith("dlq_") and k not in ("dlq_truncated", "dlq_original_bytes")
    ]
    said = [("dlq_truncated", b"value,headers"), ("dlq_original_bytes", str(len(copy.value or b"")).encode())]
    for k, v in copy.headers:
        if k == "dlq_original_bytes":  # the size of the source's value, not of a truncated copy
            said[1] = (k, v)
    key = copy.key[:MAX_KEY] if copy.key is not None else None
    return OutRecord(copy.topic, key, None, ours + said)
