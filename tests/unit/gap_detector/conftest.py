"""Builders for the detector's unit tests: stitched events as the stitcher writes them."""

from __future__ import annotations

from typing import Any

import pytest

from services.gap_detector.core.definitions import Definitions, load_definitions
from services.gap_detector.core.logic import DetectorLogic
from services.gap_detector.core.model import Entry, entry_from_event

T0 = 1_793_599_980_000  # an event time on a minute boundary
MIN = 60_000
CID = "c_00000000000000aa"


def event(
    eid: str,
    t: int,
    channel: str = "web",
    *,
    direction: str = "inbound",
    visibility: str = "onstage",
    **extra: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": "1.0",
        "event_id": eid,
        "occurred_at": "x",
        "occurred_at_ms": t,
        "channel": channel,
        "touchpoint": "tp",
        "direction": direction,
        "visibility": visibility,
        "customer_id": CID,
        "identity_keys": [],
        "stitched_at_ms": t,
    }
    doc.update(extra)
    return doc


def entry(eid: str, t: int, channel: str = "web", **extra: Any) -> Entry:
    e = entry_from_event(event(eid, t, channel, **extra))
    assert isinstance(e, Entry)
    return e


@pytest.fixture(scope="session")
def defs() -> Definitions:
    return load_definitions()


@pytest.fixture
def logic(defs: Definitions) -> DetectorLogic:
    return DetectorLogic(defs)
