"""No personal data through free text: the policy applied to a channel event's ``attributes`` before
anything is stored or forwarded (the stitched-events topic, and whatever reads it downstream).

Two layers, both configurable (JOURNEYS_ATTRIBUTES_ALLOW, JOURNEYS_ATTRIBUTES_SCRUB):

- an allow-list of attribute names: when set, every other attribute is dropped (the precise tool: a
  producer cannot leak what the pipeline never forwards);
- a scrubber (on by default) for what is kept: a text value has every e-mail address and every run of
  9+ digits (a phone number however written: +44 7700 900958, 07700-900958, (0)7700 900958; a card or
  account number) replaced by ``[redacted]``; a whole number of 9+ digits (a phone typed as a number) is
  replaced the same way; an attribute whose *name* looks like an e-mail address or a phone is dropped.

Pure: no I/O. The common case (no attributes, or short clean ones) costs a regex search per text value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

REDACTED = "[redacted]"
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[^\s@<>()\[\],;:\"'.]+", re.UNICODE)
# 9+ digits, optionally separated by one space, dot, dash, slash or parentheses between them, and a
# leading + or (. Fewer digits (an amount, a year, an order line) pass.
_DIGITS = re.compile(r"\+?\(?\d(?:[\s().\-/]{0,2}\d){8,}")
_BIG_INT = 10**8  # 9 digits


def scrub_text(value: str) -> str:
    """``value`` with e-mail addresses and long digit runs replaced by [redacted]."""
    if "@" in value:
        value = _EMAIL.sub(REDACTED, value)
    # Shorter than 9 characters cannot hold 9 digits; the regex scans the rest in C (a Python count of
    # the digits first cost ~25 us per event, a third of the stitcher's pure core).
    return value if len(value) < 9 else _DIGITS.sub(REDACTED, value)


def _looks_personal(name: str) -> bool:
    return scrub_text(name) != name


@dataclass(frozen=True, slots=True)
class AttributePolicy:
    allow: frozenset[str] | None = None  # None: every name kept (values still scrubbed)
    scrub: bool = True

    @classmethod
    def parse(cls, allow: str | None, scrub: bool = True) -> AttributePolicy:
        """JOURNEYS_ATTRIBUTES_ALLOW: unset = every name; comma-separated names; '' = none at all."""
        if allow is None:
            return cls(None, scrub)
        return cls(frozenset(n.strip() for n in allow.split(",") if n.strip()), scrub)

    def apply(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """The attributes that may travel, scrubbed. A new dict; the input is not changed."""
        out: dict[str, Any] = {}
        for name, value in attributes.items():
            if self.allow is not None and name not in self.allow:
                continue
            if self.scrub:
                if _looks_personal(name):
                    continue
                if isinstance(value, str):
                    value = scrub_text(value)
                elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _BIG_INT:
                    value = REDACTED
            out[name] = value
        return out


DEFAULT_ATTRIBUTES = AttributePolicy()
