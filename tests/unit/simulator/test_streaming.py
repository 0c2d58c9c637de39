"""JSONL record lines and the pacing arithmetic."""

from __future__ import annotations

import orjson
import pytest

from services.simulator.streaming import Line, Pacer, ReadReport, parse_line, parse_lines

pytestmark = pytest.mark.unit


def test_record_lines_keep_key_and_bytes() -> None:
    line = parse_line(1, b'{"key": "k1", "value": {"event_id": "e1", "channel": "web"}}')
    assert isinstance(line, Line) and line.key == b"k1"
    assert orjson.loads(line.payload) == {"event_id": "e1", "channel": "web"}
    raw = parse_line(2, b'{"key": "k2", "raw": "{\\"event_id\\": \\"trunc"}')
    assert isinstance(raw, Line) and raw.payload == b'{"event_id": "trunc'
    bare = parse_line(3, b'{"event_id": "e3", "channel": "web"}\n')
    assert (
        isinstance(bare, Line)
        and bare.key == b"e3"
        and bare.payload == b'{"event_id": "e3", "channel": "web"}'
    )


@pytest.mark.parametrize("text", [b"{not json", b"[1, 2]", b'{"key": 5, "value": {}}', b'{"hello": 1}'])
def test_bad_lines_are_reasons(text: bytes) -> None:
    assert isinstance(parse_line(1, text), str)


def test_bad_lines_are_reported_by_number_and_skipped() -> None:
    lines = [
        b'{"key": "a", "value": {"event_id": "a"}}\n',
        b"nope\n",
        b"\n",
        b'{"key": "b", "value": {}}\n',
        b"[]\n",
    ]
    report = ReadReport()
    keys = [line.key for line in parse_lines(lines, report)]
    assert keys == [b"a", b"b"] and report.good == 2 and report.bad_lines == [2, 5]
    assert report.reasons[5] == "not a JSON object"


def test_pacer_limits_the_rate() -> None:
    p = Pacer(rate=10)
    assert p.due(100.0) == 0.0
    for _ in range(5):
        p.sent()
    assert p.due(100.2) == pytest.approx(0.3)  # the 6th record is due at t0 + 0.5 s
    assert p.due(101.0) == 0.0


def test_pacer_compresses_simulated_time() -> None:
    p = Pacer(compression=1440)  # a simulated day per real minute
    assert p.due(50.0, sim_ms=0) == 0.0
    p.sent()
    assert p.due(50.0, sim_ms=86_400_000) == pytest.approx(60.0)
    assert p.due(80.0, sim_ms=43_200_000) == pytest.approx(0.0)
    assert Pacer().due(1.0, sim_ms=10**9) == 0.0  # no pacing at all
