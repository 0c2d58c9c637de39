"""Dead-letter copies: where they come from, a deterministic id, and a size the broker accepts."""

from __future__ import annotations

import jsonschema
import pytest

from services.common import contracts
from services.common.dead_letter import MAX_COPY_BYTES, MAX_KEY, dead_letter, size, stripped
from services.common.kafka_loop import OutRecord, Record
from services.stitcher.core.decode import REASONS
from tests.poison import FITS_BUT_ITS_COPY_DOES_NOT

pytestmark = pytest.mark.unit


def source(value: bytes | None, key: bytes | None = b"k", headers: dict[str, bytes] | None = None) -> Record:
    return Record("channel-events", 3, 1234, key, value, headers or {"trace": b"t1"}, 5)


def whole(copy: OutRecord) -> int:
    return len(copy.key or b"") + len(copy.value or b"") + size(copy.headers)


def test_a_copy_keeps_the_original_bytes_and_says_where_from() -> None:
    copy = dead_letter(source(b"{bad"), "dlq", "malformed_json", "Input data was truncated", 99)
    h = dict(copy.headers)
    assert (copy.topic, copy.key, copy.value) == ("dlq", b"k", b"{bad")
    assert h["dlq_reason"] == b"malformed_json" and h["trace"] == b"t1" and h["dlq_at_ms"] == b"99"
    assert (h["dlq_source_topic"], h["dlq_source_partition"], h["dlq_source_offset"]) == (
        b"channel-events",
        b"3",
        b"1234",
    )
    assert "dlq_truncated" not in h


def test_every_copy_of_one_input_has_the_same_dlq_id() -> None:
    first = dict(dead_letter(source(b"x"), "dlq", "oversized", "d", 1).headers)
    again = dict(dead_letter(source(b"x"), "dlq", "oversized", "d", 2).headers)
    other = dict(
        dead_letter(Record("channel-events", 3, 1235, None, b"x", {}), "dlq", "oversized", "d", 1).headers
    )
    assert first["dlq_id"] == again["dlq_id"] == b"channel-events/3/1234" != other["dlq_id"]


def test_a_record_that_fits_the_broker_gets_a_copy_that_fits_too() -> None:
    value = b"x" * FITS_BUT_ITS_COPY_DOES_NOT
    copy = dead_letter(source(value), "dlq", "oversized", "1048400 bytes > 65536", 1)
    h = dict(copy.headers)
    assert whole(copy) <= MAX_COPY_BYTES
    assert h["dlq_truncated"] == b"value" and h["dlq_original_bytes"] == str(len(value)).encode()
    assert copy.value and value.startswith(copy.value) and h["trace"] == b"t1"
    assert h["dlq_source_offset"] == b"1234"  # where the whole original is


def test_huge_headers_and_keys_are_cut_too() -> None:
    copy = dead_letter(
        source(b"v" * 10, key=b"k" * 900_000, headers={"big": b"h" * 900_000}), "dlq", "oversized", "d", 1
    )
    h = dict(copy.headers)
    assert whole(copy) <= MAX_COPY_BYTES and "big" not in h and len(copy.key or b"") == MAX_KEY
    assert h["dlq_truncated"] == b"headers,key" and copy.value == b"v" * 10


def test_a_refused_copy_is_stripped_to_its_headers() -> None:
    copy = dead_letter(source(b"x" * FITS_BUT_ITS_COPY_DOES_NOT), "dlq", "oversized", "d", 1)
    bare = stripped(copy)
    h = dict(bare.headers)
    assert bare.value is None and "trace" not in h and h["dlq_truncated"] == b"value,headers"
    assert h["dlq_original_bytes"] == str(FITS_BUT_ITS_COPY_DOES_NOT).encode()
    assert h["dlq_reason"] == b"oversized" and h["dlq_id"] == b"channel-events/3/1234"


def test_the_detail_is_bounded() -> None:
    copy = dead_letter(source(b"x"), "dlq", "schema_violation", "d" * 5000, 1)
    assert len(dict(copy.headers)["dlq_detail"]) == 512


def test_reasons_are_the_documented_ones() -> None:
    assert {
        "unprocessable",
        "undeliverable",
        "malformed_json",
        "schema_violation",
        "oversized",
        "bad_timestamp",
        "no_identifier",
    } == set(REASONS)


def test_every_copy_follows_the_dead_letter_headers_contract() -> None:
    schema = contracts.load_schema("dead_letter_headers.v1")
    jsonschema.Draft202012Validator.check_schema(schema)
    check = jsonschema.Draft202012Validator(schema)
    assert schema["properties"]["dlq_reason"]["enum"] == list(REASONS)
    copies = [
        dead_letter(
            source(b"x" * FITS_BUT_ITS_COPY_DOES_NOT),
            "dlq",
            reason,
            "d",
            1,
            extra=[("dlq_failed_topic", b"stitched-events")],
        )
        for reason in REASONS
    ]
    for copy in [*copies, stripped(copies[0])]:
        doc = {k: v.decode() for k, v in copy.headers}
        assert list(check.iter_errors(doc)) == []
    assert list(check.iter_errors({"dlq_reason": "because"}))
