"""Hypothesis strategies for channel events of a few people with overlapping identifiers."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

from services.common.timeutil import format_ms

BASE_MS = 1_793_600_000_000  # 2026-11-02
NOW_MS = BASE_MS + 10 * 86_400_000
CHANNELS = ("web", "mobile_app", "email", "phone", "chat", "store")


def person_ids(person: int) -> list[tuple[str, str]]:
    """A small pool of identifiers that belong to one person."""
    return [
        ("email", f"p{person}@example.com"),
        ("phone", f"07700 90{person:04d}"),
        ("cookie_id", f"ck_{person}_a"),
        ("cookie_id", f"ck_{person}_b"),
        ("device_id", f"dev-{person}"),
        ("account_id", f"ACC-{person}"),
    ]


@st.composite
def channel_event(draw: st.DrawFn, n: int, people: int) -> dict[str, Any]:
    person = draw(st.integers(0, people - 1))
    pool = person_ids(person)
    picks = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique_by=lambda p: p[0]))
    event: dict[str, Any] = {
        "event_id": f"e{n}",
        "occurred_at": format_ms(BASE_MS + draw(st.integers(0, 5)) * 60_000),  # ties on purpose
        "channel": draw(st.sampled_from(CHANNELS)),
        "touchpoint": draw(st.sampled_from(("login", "call", "checkout"))),
        "identifiers": dict(picks),
        "direction": draw(st.sampled_from(("inbound", "outbound"))),
    }
    if draw(st.booleans()):
        event["journey"] = {"type": "purchase", "stage": draw(st.sampled_from(("browse", "checkout")))}
    if draw(st.booleans()):
        event["department"] = draw(st.sampled_from(("sales", "support")))
    if draw(st.booleans()):
        event["nps"] = draw(st.integers(0, 10))
    return event


@st.composite
def event_set(draw: st.DrawFn, max_events: int = 25, people: int = 4) -> list[bytes]:
    size = draw(st.integers(1, max_events))
    return [orjson.dumps(draw(channel_event(i, people))) for i in range(size)]


@st.composite
def arrival(draw: st.DrawFn, events: list[bytes]) -> list[bytes]:
    """Any permutation of the events, with any of them delivered again (at-least-once)."""
    dups = draw(st.lists(st.sampled_from(events), max_size=len(events)))
    return list(draw(st.permutations(events + dups)))
