"""Preparing a batch and building the outgoing records against the contracts."""

from __future__ import annotations

import orjson
import pytest

from services.common.contracts import IDENTITY_MERGE, STITCHED_EVENT, first_error
from services.stitcher.core.batch import Raw, outputs, prepare
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.identity import IdentityGraph
from services.stitcher.core.stitch import IdentifierHasher
from services.stitcher.settings import parse_limits

pytestmark = pytest.mark.unit

NOW = 1_793_700_000_000
HASHER = IdentifierHasher(b"k", "GB")


def event(eid: str, **ids: str) -> Raw:
    body = {"event_id": eid, "occurred_at": "2026-11-03T10:00:00Z", "channel": "web", "touchpoint": "login",
            "identifiers": ids, "device": {"type": "mobile"}, "journey": {"type": "buy", "stage": "pay"}}
    return Raw(orjson.dumps(body), None, {})


def test_junk_only_events_are_rejected_as_no_identifier() -> None:
    batch = [event("e1", email="test@example.com", cookie_id="null"), event("e2", phone="07700 900123")]
    split = prepare(batch, HASHER, NOW, DecodePolicy())
    assert [r.reason for _, r in split.rejected] == ["no_identifier"]
    assert [p.event["event_id"] for p in split.ready] == ["e2"]


def test_outputs_follow_the_contracts_and_hold_no_raw_identifier() -> None:
    split = prepare([event("e1", cookie_id="ck_1"), event("e2", email="ana@example.com"),
                     event("e3", cookie_id="ck_1", email="ana@example.com", phone="07700 900123")],
                    HASHER, NOW, DecodePolicy())
    graph = IdentityGraph(parse_limits(""))
    res = [graph.resolve(p.event["event_id"], p.occurred_ms, [i.key for i in p.idents], p.mint)
           for p in split.ready]
    out = outputs(split.ready, res, NOW)
    for st in out.stitched:
        assert first_error(STITCHED_EVENT, st) is None
        text = orjson.dumps(st).decode()
        assert "ana@example.com" not in text and "ck_1" not in text and "900123" not in text
    assert out.stitched[2]["masked"] == {"email": "a***@example.com", "phone": "•••• 0123", "cookie_id": "c…"}
    assert "device_key" in out.stitched[0]
    (merge,) = out.merges
    assert first_error(IDENTITY_MERGE, merge) is None and out.merge_count == 1
    assert merge["survivor"] == out.stitched[2]["customer_id"]
