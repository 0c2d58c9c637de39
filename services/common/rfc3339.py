"""RFC 3339 ``date-time`` -> epoch ms, judged exactly as the contracts' ``date-time`` format judges it.

The decoders (``services.common.record_codec``) check ``occurred_at`` here: the schema's pattern gives the
shape, this module the calendar (day of month, leap seconds), and the ms in the same pass.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# The schema's date-time pattern; the calendar (day of month, leap second) is rfc3339_ms's job.
DATE_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)

# -- RFC 3339 date-time ------------------------------------------------------------------------------------
_DATE_TIME = re.compile(DATE_TIME_PATTERN).match
# The common shape, which datetime.fromisoformat (C) parses exactly as RFC 3339 reads it; anything else
# (t/z in lower case, leap seconds, year 0, offsets fromisoformat refuses) takes the exact arithmetic.
_COMMON = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\Z"
).match
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_fromisoformat = datetime.fromisoformat
_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def rfc3339_ms(text: str) -> int | None:
    """Epoch ms (fraction truncated) of a JSON Schema ``date-time`` matching DATE_TIME_PATTERN, or None when
    it is not one: wrong shape, no Feb 30, hours < 24, offsets < 24:00, a leap second only at 23:59:60 UTC
    (counted as the next second, like POSIX time)."""
    if _COMMON(text) is not None:
        try:
            return (_fromisoformat(text) - _EPOCH) // _MS
        except (ValueError, OverflowError):
            pass
    return _rfc3339_exact(text) if _DATE_TIME(text) is not None else None


def _days_from_civil(y: int, m: int, d: int) -> int:
    # Howard Hinnant's days_from_civil: proleptic Gregorian, any year (datetime stops at year 1).
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _rfc3339_exact(text: str) -> int | None:
    y, mo, d = int(text[0:4]), int(text[5:7]), int(text[8:10])
    hh, mi, ss = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if not 1 <= mo <= 12 or d < 1 or hh > 23 or mi > 59 or ss > 60:
        return None
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if d > (29 if mo == 2 and leap else _DAYS[mo]):
        return None
    tail = text[19:]
    frac_ms = 0
    if tail[0] == ".":
        end = 1
        while tail[end].isdigit():
            end += 1
        frac_ms = int(tail[1:end][:3].ljust(3, "0"))
        tail = tail[end:]
    offset_min = 0
    if tail not in ("Z", "z"):
        oh, om = int(tail[1:3]), int(tail[4:6])
        if oh > 23 or om > 59:
            return None
        offset_min = (oh * 60 + om) * (-1 if tail[0] == "-" else 1)
    if ss == 60 and (hh * 60 + mi - offset_min) % 1440 != 1439:
        return None
    minutes = _days_from_civil(y, mo, d) * 1440 + hh * 60 + mi - offset_min
    return (minutes * 60 + ss) * 1000 + frac_ms
