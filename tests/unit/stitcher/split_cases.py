"""Two people wrongly merged by one event, for the split tests (unit and integration): A's and B's own
events (each carries the person's e-mail, B's also B's cookie, so each person alone is one customer) and a
bridge event with A's e-mail and B's cookie (the shared tablet). Split by B's identifiers, the bridge stays
with A: its strongest identifier (the e-mail) is A's."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

from services.common.timeutil import format_ms
from services.stitcher.core.hashed_identifiers import IdentifierHasher
from services.stitcher.core.model import InMemoryStitcher
from tests.unit.stitcher.events import BASE_MS, NOW_MS

HASHER = IdentifierHasher(b"k", "GB")
BRIDGE = "bridge"


def pool(person: str) -> dict[str, str]:
    n = 1 if person == "a" else 2
    return {
        "email": f"{person}@example.com",
        "phone": f"07700 90000{n}",
        "cookie_id": f"ck_{person}",
        "device_id": f"dev-{person}",
    }


def event(eid: str, ids: dict[str, str], minute: int, channel: str, stage: str | None) -> bytes:
    doc: dict[str, Any] = {
        "event_id": eid,
        "occurred_at": format_ms(BASE_MS + minute * 60_000),
        "channel": channel,
        "touchpoint": "t",
        "identifiers": ids,
        "direction": "inbound",
    }
    if stage:
        doc["journey"] = {"type": "buy", "stage": stage}
    return orjson.dumps(doc)


@st.composite
def person_events(draw: st.DrawFn, person: str) -> list[bytes]:
    p = pool(person)
    out = []
    for i in range(draw(st.integers(1, 5))):
        extra = draw(st.lists(st.sampled_from(["phone", "cookie_id", "device_id"]), max_size=2, unique=True))
        if person == "b":  # B's own cookie is on every one of B's events: the bridge reaches B
            extra = ["cookie_id", *(t for t in extra if t != "cookie_id")]
        out.append(
            event(
                f"{person}{i}",
                {"email": p["email"], **{t: p[t] for t in extra}},
                draw(st.integers(0, 30)),
                draw(st.sampled_from(["web", "phone", "chat"])),
                draw(st.sampled_from([None, "x", "y"])),
            )
        )
    return out


@st.composite
def wrong_merge(draw: st.DrawFn) -> tuple[list[bytes], list[bytes], bytes, list[bytes]]:
    """(A's events, B's events, the bridge, every event in one arrival order)."""
    a, b = draw(person_events("a")), draw(person_events("b"))
    bridge = event(
        BRIDGE,
        {"email": pool("a")["email"], "cookie_id": pool("b")["cookie_id"]},
        draw(st.integers(0, 30)),
        "store",
        None,
    )
    return a, b, bridge, draw(st.permutations([*a, *b, bridge]))


def stitched(values: list[bytes], limits: dict[str, int], cap: int = 1000) -> InMemoryStitcher:
    model = InMemoryStitcher(HASHER, limits, cap)
    model.process(values, NOW_MS)
    return model


def keys_of(person: str) -> set[str]:
    return {i.key for i in HASHER.usable(pool(person))}


def journey_view(model: InMemoryStitcher, cid: str) -> tuple[Any, ...]:
    """A journey without its masks: timeline in order, touchpoints, summary."""
    j = model.store.journeys[cid]
    return (
        sorted(j.timeline.items(), key=lambda kv: (kv[1], kv[0])),
        dict(j.touchpoints),
        dict(sorted(j.summary.items())),
    )
