"""Preparing a batch and building the outgoing records against the contracts (and the records of before)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema_rs
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.common.contracts import (
    CHANNEL_EVENT,
    IDENTITY_MERGE,
    JOURNEY,
    STITCHED_EVENT,
    first_error,
    load_schema,
    validator,
)
from services.common.kafka_loop import Record
from services.common.record_codec import decode_stitched
from services.stitcher.core.batch import OutTopics, bare_record, outputs, prepare, rejected_by_reason
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.hashed_identifiers import IdentifierHasher, key_ref
from services.stitcher.core.identifiers import mint_customer_id, strongest
from services.stitcher.core.identity import IdentityGraph, Resolution
from services.stitcher.core.journey import Facts
from services.stitcher.core.scrub import AttributePolicy
from services.stitcher.core.stitch import touchpoint
from services.stitcher.settings import parse_limits
from tests.unit.common.record_docs import channel_events

pytestmark = pytest.mark.unit

NOW = 1_793_700_000_000
HASHER = IdentifierHasher(b"k", "GB")
TOPICS = OutTopics("stitched", "merges")
STITCHED_FIELDS = (
    "department",
    "journey",
    "intent",
    "outcome",
    "sentiment",
    "nps",
    "emotion",
    "device",
    "persona",
    "source",
    "attributes",
)


def body(eid: str, **ids: str) -> dict[str, Any]:
    return {
        "event_id": eid,
        "occurred_at": "2026-11-03T10:00:00+01:00",
        "channel": "web",
        "touchpoint": "login",
        "identifiers": ids,
        "device": {"type": "mobile"},
        "journey": {"type": "buy", "stage": "pay"},
        "sentiment": -0.25,
        "nps": 7,
        "attributes": {"campaign": "x", "n": 3, "ok": True, "none": None},
    }


def event(eid: str, **ids: str) -> Record:
    return Record("channel-events", 3, 40, b"k", orjson.dumps(body(eid, **ids)), {}, 1_793_699_000_000)


def stitched_before(
    ev: Mapping[str, Any],
    occurred_ms: int,
    cid: str,
    keys: list[str],
    masked: dict[str, str],
    device_key: str | None,
    conflict: bool,
) -> dict[str, Any]:
    """stitch.stitched_event as it was (a dict for orjson), to hold the typed encoder to the same content."""
    out: dict[str, Any] = {
        # 1.1 since other_identity_keys (only for identifier types the graph does not know): else the same
        "schema_version": "1.1",
        "event_id": ev["event_id"],
        "occurred_at": ev["occurred_at"],
        "occurred_at_ms": occurred_ms,
        "channel": ev["channel"],
        "touchpoint": ev["touchpoint"],
        "direction": ev.get("direction", "inbound"),
        "visibility": ev.get("visibility", "onstage"),
    }
    out.update({name: ev[name] for name in STITCHED_FIELDS if name in ev})
    if device_key is not None:
        out["device_key"] = device_key
    out.update(customer_id=cid, identity_keys=keys, masked=masked)
    if conflict:
        out["merge_conflict"] = True
    out["stitched_at_ms"] = NOW
    return out


def normal(value: Any) -> Any:
    """JSON Schema's view: 7.0 is the integer 7 (the typed decoder stores it as one)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    return value


def test_junk_only_events_are_rejected_as_no_identifier() -> None:
    batch = [
        event("e1", email="test@example.com", cookie_id="null"),
        event("e2", phone="07700 900123"),
        bare_record(b"{oops"),
    ]
    split = prepare(batch, HASHER, NOW, DecodePolicy())
    assert [r.reason for _, r in split.rejected] == ["no_identifier", "malformed_json"]
    assert split.rejected[0][0] is batch[0]
    assert [p.event_id for p in split.ready] == ["e2"]
    assert rejected_by_reason(split.rejected) == {"no_identifier": 1, "malformed_json": 1}


def test_prepare_computes_what_the_journey_write_needs() -> None:
    (prep,) = prepare(
        [event("e1", cookie_id="ck_1", email="Ana@Example.com")], HASHER, NOW, DecodePolicy()
    ).ready
    assert prep.occurred_ms == NOW - 3_600_000 and prep.raw.offset == 40
    assert [i.id_type for i in prep.idents] == ["email", "cookie_id"]  # contract order
    assert prep.mint == mint_customer_id(strongest([i.key for i in prep.idents]))
    doc = body("e1", cookie_id="ck_1", email="Ana@Example.com")
    before = touchpoint(stitched_before(doc, prep.occurred_ms, "c_0123456789abcdef", [], {}, None, False))
    # Byte for byte what the journey store got before, plus the refs of the event's identifiers (for a split)
    assert prep.touchpoint == orjson.dumps({**before, "ik": [key_ref(i.key) for i in prep.idents]})
    assert [len(r) for r in orjson.loads(prep.touchpoint)["ik"]] == [6 + 16, 10 + 16]  # type: + 16 hex
    assert prep.facts == Facts.of(before) == Facts("web", "", "buy", "pay", "7", "in")


def test_outputs_follow_the_contracts_and_hold_no_raw_identifier() -> None:
    bodies = [
        body("e1", cookie_id="ck_1"),
        body("e2", email="ana@example.com"),
        body("e3", cookie_id="ck_1", email="ana@example.com", phone="07700 900123"),
    ]
    split = prepare([event(b["event_id"], **b["identifiers"]) for b in bodies], HASHER, NOW, DecodePolicy())
    graph = IdentityGraph(parse_limits(""))
    res = [graph.resolve(p.event_id, p.occurred_ms, [i.key for i in p.idents], p.mint) for p in split.ready]
    stitched, merges, stats = outputs(split.ready, res, NOW, TOPICS)
    for rec, prep, r, doc in zip(stitched, split.ready, res, bodies, strict=True):
        st = orjson.loads(rec.value or b"")
        assert first_error(STITCHED_EVENT, st) is None
        text = (rec.value or b"").decode()
        assert "ana@example.com" not in text and "ck_1" not in text and "900123" not in text
        assert (rec.topic, rec.key) == ("stitched", r.customer_id.encode())
        assert rec.timestamp_ms == 1_793_699_000_000  # the channel event's: latency stays measurable
        assert dict(rec.headers) == {
            "ce_specversion": b"1.0",
            "ce_id": doc["event_id"].encode(),
            "ce_type": b"dev.journeys.stitched_event.v1",
            "ce_source": b"journeys/stitcher",
            "ce_time": doc["occurred_at"].encode(),
            "content-type": b"application/json",
        }
        before = stitched_before(
            doc,
            prep.occurred_ms,
            r.customer_id,
            st["identity_keys"],
            st["masked"],
            st.get("device_key"),
            False,
        )
        assert rec.value == orjson.dumps(before)  # the same bytes as the dict + orjson of before
        assert decode_stitched(rec.value or b"").customer_id == r.customer_id
    last = orjson.loads(stitched[2].value or b"")
    assert last["masked"] == {"email": "a***@example.com", "phone": "•••• 0123", "cookie_id": "c…"}
    assert "device_key" in orjson.loads(stitched[0].value or b"") and "device_key" not in orjson.loads(
        stitched[1].value or b""
    )
    (merge,) = merges
    m = orjson.loads(merge.value or b"")
    assert first_error(IDENTITY_MERGE, m) is None and m["kind"] == "merge"
    assert merge.key == m["survivor"].encode() == stitched[2].key and merge.topic == "merges"
    assert dict(merge.headers)["ce_type"] == b"dev.journeys.identity_merge.v1"
    assert (stats.stitched, stats.by_channel, stats.merges, stats.conflict_records) == (3, {"web": 3}, 1, 0)


def test_conflicts_are_flagged_and_counted() -> None:
    limits = parse_limits("cookie_id=1")
    split = prepare(
        [
            event("e1", cookie_id="ck_1"),
            event("e2", cookie_id="ck_2", email="b@shop.com"),
            event("e3", cookie_id="ck_1", email="b@shop.com"),
        ],
        HASHER,
        NOW,
        DecodePolicy(),
    )
    graph = IdentityGraph(limits)
    res = [graph.resolve(p.event_id, p.occurred_ms, [i.key for i in p.idents], p.mint) for p in split.ready]
    stitched, merges, stats = outputs(split.ready, res, NOW, TOPICS)
    assert orjson.loads(stitched[2].value or b"").get("merge_conflict") is True
    assert stats.conflicts == {"cookie_id": 1} and stats.conflict_records == 1 and stats.merges == 0
    (conflict,) = merges
    rec = orjson.loads(conflict.value or b"")
    assert first_error(IDENTITY_MERGE, rec) is None
    assert (rec["kind"], rec["limit"]) == ("conflict", "cookie_id")


def test_outputs_refuse_a_resolution_count_that_does_not_match() -> None:
    split = prepare([event("e1", cookie_id="ck_1")], HASHER, NOW, DecodePolicy())
    with pytest.raises(ValueError):
        outputs(split.ready, [], NOW, TOPICS)


TOUCHPOINT = jsonschema_rs.Draft202012Validator(load_schema(JOURNEY)["$defs"]["touchpoint"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channel_events(), st.booleans())
def test_every_valid_event_gives_the_records_of_before(doc: dict[str, Any], conflict: bool) -> None:
    doc["occurred_at"] = "2026-11-03T09:30:00.5+01:00"  # inside the time policy: the rest varies
    assume(validator(CHANNEL_EVENT).is_valid(doc))
    # Without the attribute scrubber: the records of before forwarded attributes as they came (its tests:
    # tests/unit/security/test_scrub.py).
    unscrubbed = DecodePolicy(attributes=AttributePolicy(scrub=False))
    split = prepare([bare_record(json.dumps(doc).encode())], HASHER, NOW, unscrubbed)
    assume(split.ready)  # not every identifier is usable
    (prep,) = split.ready
    cid = "c_" + "0" * 16
    res = Resolution(cid, ("email",) if conflict else (), ())
    (rec,), merges, stats = outputs([prep], [res], NOW, TOPICS)
    value = rec.value or b""
    st_doc = orjson.loads(value)
    assert (
        first_error(STITCHED_EVENT, st_doc) is None
        and not merges
        and stats.conflicts == ({"email": 1} if conflict else {})
    )
    before = stitched_before(
        doc,
        prep.occurred_ms,
        cid,
        [i.key for i in prep.idents],
        {i.id_type: i.masked for i in prep.idents},
        st_doc.get("device_key"),
        conflict,
    )
    assert st_doc == normal(before)
    assert list(st_doc) == list(before)  # and the same key order
    tp = orjson.loads(prep.touchpoint)
    assert tp.pop("ik") == [key_ref(i.key) for i in prep.idents]  # kept for a split; the API leaves it out
    assert TOUCHPOINT.is_valid(tp) and tp == normal(touchpoint(before))
    assert prep.facts == Facts.of(tp)
