"""What every worker process shares beyond its Kafka loop: CloudEvents headers of what it produces, and
the garbage collector's tuning."""

from __future__ import annotations

import gc

GC_YOUNG_THRESHOLD = 50_000


def ce_headers(ce_type: bytes, ce_source: bytes, ce_id: str, ce_time: str) -> list[tuple[str, bytes]]:
    """CloudEvents binary-mode headers of a produced record (docs/ARCHITECTURE.md, "Kafka headers")."""
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", ce_id.encode()),
        ("ce_type", ce_type),
        ("ce_source", ce_source),
        ("ce_time", ce_time.encode()),
        ("content-type", b"application/json"),
    ]


def tune_gc() -> None:
    """Fewer cyclic garbage collections. A batch allocates thousands of short-lived containers (decoded
    records, state, outgoing records) that reference counting frees anyway; at the default threshold (700)
    the collector runs many times per batch and full collections keep walking the long-lived caches
    (identifiers, detector state). What exists at startup lives as long as the process: frozen."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
