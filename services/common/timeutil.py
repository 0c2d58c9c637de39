"""Event-time helpers: RFC 3339 <-> epoch milliseconds, durations like '30m'."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_DURATION = re.compile(r"^([0-9]+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_rfc3339_ms(value: str) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp with an offset. Raises ValueError otherwise."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # fromisoformat takes at most microseconds; trim nanosecond fractions.
    m = re.match(r"^(.*T[0-9:]{8})\.([0-9]+)(.*)$", text, flags=re.IGNORECASE)
    if m:
        text = f"{m.group(1)}.{m.group(2)[:6].ljust(6, '0')}{m.group(3)}"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"timestamp without offset: {value!r}")
    return int(dt.timestamp() * 1000)


def format_ms(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. '2026-11-23T10:00:00.000Z'."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_duration_ms(value: str) -> int:
    """Milliseconds of a duration like '90s', '30m', '2h', '7d'."""
    m = _DURATION.match(value.strip())
    if not m:
        raise ValueError(f"not a duration (use e.g. 90s, 30m, 2h, 7d): {value!r}")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def now_ms() -> int:
    return time.time_ns() // 1_000_000
