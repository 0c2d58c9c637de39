"""Open contracts at the stitcher: a later 1.x event, a channel and an identifier type it does not know.

An identifier of a type the identity graph does not know is carried on the stitched event (keyed hash and
mask) but never reaches the identity script: it cannot link two customers, and an event that has only
such identifiers has nothing to be stitched on (no_identifier). An unknown channel is stitched as sent and
counted as 'other'.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.common.record_codec import decode_stitched
from services.stitcher.core.batch import OutTopics, bare_record, outputs, prepare
from services.stitcher.core.decode import DecodePolicy
from services.stitcher.core.hashed_identifiers import IdentifierHasher
from services.stitcher.core.identity import Resolution
from services.stitcher.core.model import InMemoryStitcher
from services.stitcher.settings import parse_limits

pytestmark = pytest.mark.unit

NOW = 1_793_700_000_000
HASHER = IdentifierHasher(b"k", "GB")
POLICY = DecodePolicy()
WHATSAPP = "+351 912 345 678"


def event(n: int, **fields: Any) -> bytes:
    doc = {
        "event_id": f"e{n}",
        "occurred_at": "2026-11-03T10:00:00Z",
        "channel": "web",
        "touchpoint": "login",
        "identifiers": {"email": f"p{n}@example.com"},
        **fields,
    }
    return orjson.dumps(doc)


def stitched(value: bytes) -> tuple[dict[str, Any], dict[str, int]]:
    split = prepare([bare_record(value)], HASHER, NOW, POLICY)
    assert not split.rejected, split.rejected
    res = [Resolution("c_0123456789abcdef", (), ())]
    out, _, stats = outputs(split.ready, res, NOW, OutTopics("s", "m"))
    raw = out[0].value or b""
    decode_stitched(raw)  # holds it to stitched_event.v1
    return orjson.loads(raw), stats.by_channel


def test_an_unknown_identifier_type_is_carried_but_never_enters_the_graph() -> None:
    value = event(1, identifiers={"email": "ana@example.com", "whatsapp_id": WHATSAPP})
    prep = prepare([bare_record(value)], HASHER, NOW, POLICY).ready[0]
    assert [i.id_type for i in prep.idents] == ["email"]  # what the identity script is given
    assert [i.id_type for i in prep.carried] == ["whatsapp_id"]
    doc, _ = stitched(value)
    assert doc["schema_version"] == "1.1"
    assert [k.split(":")[0] for k in doc["identity_keys"]] == ["email"]
    assert doc["other_identity_keys"] == [prep.carried[0].key]
    assert doc["other_identity_keys"][0].startswith("whatsapp_id:")
    assert set(doc["masked"]) == {"email", "whatsapp_id"}
    assert WHATSAPP not in orjson.dumps(doc).decode() and "912345678" not in orjson.dumps(doc).decode()


def test_an_event_without_unknown_types_has_no_other_keys() -> None:
    doc, _ = stitched(event(2))
    assert "other_identity_keys" not in doc


def test_an_event_with_only_unknown_types_has_nothing_to_be_stitched_on() -> None:
    split = prepare([bare_record(event(3, identifiers={"whatsapp_id": WHATSAPP}))], HASHER, NOW, POLICY)
    assert not split.ready
    assert [r.reason for _, r in split.rejected] == ["no_identifier"]
    assert "another type" in split.rejected[0][1].detail


def test_a_shared_unknown_identifier_links_nobody() -> None:
    """Two people who send the same whatsapp_id stay two customers (the graph never sees it)."""
    stitcher = InMemoryStitcher(HASHER, parse_limits(""), 100)
    stitcher.process(
        [
            event(4, identifiers={"email": "a@example.com", "whatsapp_id": WHATSAPP}),
            event(5, identifiers={"email": "b@example.com", "whatsapp_id": WHATSAPP}),
        ],
        NOW,
    )
    assert len({s.customer_id for s in stitcher.stitched}) == 2
    assert not stitcher.merges


def test_an_unknown_channel_is_stitched_as_sent_and_counted_as_other() -> None:
    doc, by_channel = stitched(event(6, channel="kiosk"))
    assert doc["channel"] == "kiosk"
    assert by_channel == {"other": 1}
    assert stitched(event(7, channel="web"))[1] == {"web": 1}


def test_a_later_minor_version_with_new_fields_is_stitched_and_the_new_fields_dropped() -> None:
    doc, _ = stitched(
        event(
            8,
            schema_version="1.4",
            locale="pt-PT",
            consent={"marketing": True},
            journey={"type": "support", "stage": "triage", "step": 2},
        )
    )
    assert "locale" not in doc and "consent" not in doc
    assert doc["journey"] == {"type": "support", "stage": "triage"}
