"""Poison records never raise out of the decoders: each one is rejected alone, with its dead-letter reason,
and valid neighbours in the same batch are prepared as if it were not there (no I/O)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.common import record_codec, records
from services.common.records import RecordError
from services.stitcher.core.batch import bare_record, prepare
from services.stitcher.core.decode import REASONS, DecodePolicy, decode, decode_slow
from services.stitcher.core.hashed_identifiers import IdentifierHasher
from tests.poison import Poison, channel_poison, merge_poison, odd_but_valid, stitched_poison
from tests.unit.stitcher.test_decode import EVENT, NOW

pytestmark = pytest.mark.unit

HASHER = IdentifierHasher(b"k" * 32, "GB")
POLICY = DecodePolicy()
STITCHED = {
    "schema_version": "1.0",
    "event_id": "e1",
    "occurred_at": "2026-11-03T10:00:00Z",
    "occurred_at_ms": 1_793_700_000_000,
    "channel": "web",
    "touchpoint": "login",
    "direction": "inbound",
    "visibility": "onstage",
    "customer_id": "c_0123456789abcdef",
    "identity_keys": ["email:" + "a" * 64],
    "stitched_at_ms": 1_793_700_000_001,
}
MERGE = {
    "schema_version": "1.0",
    "record_id": "m_1",
    "kind": "merge",
    "survivor": "c_0123456789abcdef",
    "loser": "c_0123456789abcdee",
    "event_id": "e1",
    "recorded_at_ms": 1,
}


@pytest.mark.parametrize("poison", channel_poison(EVENT), ids=lambda p: p.kind)
def test_channel_poison_is_rejected_alone_with_its_reason(poison: Poison) -> None:
    valid = [bare_record(orjson.dumps(dict(EVENT, event_id=f"v{i}"))) for i in range(4)]
    split = prepare([*valid[:2], bare_record(poison.value), *valid[2:]], HASHER, NOW, POLICY)
    assert [p.event_id for p in split.ready] == ["v0", "v1", "v2", "v3"]
    assert [(r.reason, raw.value) for raw, r in split.rejected] == [(poison.reason, poison.value)]
    assert poison.reason in REASONS
    assert "secret" not in split.rejected[0][1].detail  # never an identifier value


@pytest.mark.parametrize("poison", channel_poison(EVENT), ids=lambda p: p.kind)
def test_the_fast_and_the_reference_path_agree_on_the_channel_poison(poison: Poison) -> None:
    if poison.value is None or poison.reason in ("oversized", "no_identifier"):
        return  # decided before decoding, or after it (by the identifiers)
    assert decode(poison.value, {}, NOW, POLICY) == decode_slow(poison.value, {}, NOW, POLICY)
    if poison.reason in ("malformed_json", "schema_violation"):
        with pytest.raises(RecordError) as info:
            record_codec.decode_channel(poison.value)
        assert info.value.reason == poison.reason


@pytest.mark.parametrize(("kind", "value"), odd_but_valid(EVENT), ids=[k for k, _ in odd_but_valid(EVENT)])
def test_odd_but_valid_events_are_prepared(kind: str, value: bytes) -> None:
    split = prepare([bare_record(value)], HASHER, NOW, POLICY)
    assert not split.rejected and len(split.ready) == 1, kind


def test_duplicate_keys_mean_the_last_one_on_both_paths() -> None:
    value = dict(odd_but_valid(EVENT))["duplicate_keys_last_wins"]
    fast = record_codec.decode_channel(value)
    slow = record_codec.from_valid(record_codec.loads(value), records.ChannelEvent)
    assert fast.touchpoint == slow.touchpoint == "last"


def test_whatever_raises_while_preparing_one_record_rejects_it_alone() -> None:
    class Exploding(IdentifierHasher):
        def usable(self, identifiers: Any) -> list[Any]:
            if "boom@example.com" in identifiers.values():
                raise ArithmeticError("boom@example.com")  # a message that quotes the value
            return super().usable(identifiers)

    hasher = Exploding(b"k" * 32, "GB")
    batch = [
        bare_record(orjson.dumps(dict(EVENT, event_id="v1"))),
        bare_record(orjson.dumps(dict(EVENT, event_id="x", identifiers={"email": "boom@example.com"}))),
        bare_record(orjson.dumps(dict(EVENT, event_id="v2"))),
    ]
    split = prepare(batch, hasher, NOW, POLICY)
    assert [p.event_id for p in split.ready] == ["v1", "v2"]
    [(raw, rejected)] = split.rejected
    assert raw is batch[1] and rejected.reason == "unprocessable" and "boom" not in rejected.detail


@pytest.mark.parametrize("poison", stitched_poison(STITCHED), ids=lambda p: p.kind)
def test_stitched_poison_raises_only_record_errors(poison: Poison) -> None:
    assert record_codec.decode_stitched(orjson.dumps(STITCHED)).occurred_at_ms == STITCHED["occurred_at_ms"]
    with pytest.raises(RecordError) as info:
        record_codec.decode_stitched(poison.value or b"")
    assert info.value.reason == poison.reason


@pytest.mark.parametrize("poison", merge_poison(MERGE), ids=lambda p: p.kind)
def test_merge_poison_raises_only_record_errors(poison: Poison) -> None:
    assert record_codec.decode_merge(orjson.dumps(MERGE)).loser == MERGE["loser"]
    with pytest.raises(RecordError) as info:
        record_codec.decode_merge(poison.value or b"")
    assert info.value.reason == poison.reason


def test_occurred_at_ms_is_bounded_to_what_a_date_time_can_name() -> None:
    for ms in (records.MIN_EVENT_MS, records.MAX_EVENT_MS):
        assert (
            record_codec.decode_stitched(orjson.dumps(dict(STITCHED, occurred_at_ms=ms))).occurred_at_ms == ms
        )
    for ms in (records.MIN_EVENT_MS - 1, records.MAX_EVENT_MS + 1):
        with pytest.raises(RecordError):
            record_codec.decode_stitched(orjson.dumps(dict(STITCHED, occurred_at_ms=ms)))
