"""Hypothesis strategies: documents near each contract, valid ones and mutations of them.

Shared by the tests that hold a typed decoder to its JSON Schema. Mutations aim at every kind of
constraint the schemas use: required, type, enum, date-time, additionalProperties, min/max, pattern.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

IDENT_TYPES = (
    "customer_id",
    "account_id",
    "email",
    "phone",
    "device_id",
    "cookie_id",
    "loyalty_id",
    "social_handle",
)
CHANNELS = ("web", "mobile_app", "email", "sms", "phone", "ivr", "chat", "social", "store", "field", "other")
OUTCOMES = ("success", "failure", "abandoned", "pending", "transferred", "resolved", "unresolved")
DEVICE_TYPES = ("desktop", "mobile", "tablet", "landline", "kiosk", "pos", "other")

# Strings near the edges: ASCII, unicode, control characters, trailing newlines (ECMA '$' vs Python '$').
any_text = st.text(max_size=12) | st.sampled_from(["", "a\n", "\n", "é", "😀", " ", "x" * 70, "a" * 129])
json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def padded(n: int, width: int) -> str:
    return str(n).zfill(width)


@st.composite
def date_times(draw: st.DrawFn) -> str:
    """RFC 3339-shaped strings whose fields stray just past their limits (Feb 30, 24:00, leap seconds)."""
    y = draw(st.sampled_from([0, 1900, 2000, 2024, 2026, 9999]) | st.integers(0, 9999))
    mo = draw(st.integers(1, 12) | st.sampled_from([0, 13]))
    d = draw(st.sampled_from([1, 28, 29, 30, 31]) | st.integers(0, 32))
    hh = draw(st.sampled_from([0, 23, 24]) | st.integers(0, 25))
    mi = draw(st.sampled_from([0, 29, 59, 60]) | st.integers(0, 61))
    ss = draw(st.sampled_from([0, 59, 60, 61]) | st.integers(0, 61))
    frac = draw(st.none() | st.text("0123456789", min_size=0, max_size=10))
    if draw(st.integers(0, 3)) == 0:  # leap seconds: valid only at 23:59:60 UTC
        hh, mi, ss = draw(st.sampled_from([(23, 59, 60), (0, 29, 60), (23, 29, 60), (22, 59, 60)]))
    zone = draw(
        st.sampled_from(
            [
                "Z",
                "z",
                "",
                "+00:00",
                "-00:00",
                "+00:30",
                "-00:30",
                "+01:00",
                "-01:00",
                "+23:59",
                "+24:00",
                "+00:60",
                "+5:00",
            ]
        )
    )
    sep = draw(st.sampled_from(["T", "t", " ", "T", "T"]))
    text = (
        f"{padded(y, 4)}-{padded(mo, 2)}-{padded(d, 2)}{sep}{padded(hh, 2)}:{padded(mi, 2)}:"
        f"{padded(ss, 2)}{'' if frac is None else '.' + frac}{zone}"
    )
    return text


good_date_times = st.sampled_from(
    [
        "2026-11-03T10:00:00Z",
        "2026-11-03T09:15:02.120+01:00",
        "2026-11-03T10:00:00.123456789-05:30",
        "2026-11-03t10:00:00z",
    ]
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` about 9 times in 10 (one_of would favour the near misses as 'simpler')."""
    return st.tuples(st.integers(0, 9), good, bad).map(lambda t: t[2] if t[0] == 9 else t[1])


stage = mostly(
    st.from_regex(r"\A[a-z][a-z0-9_]{0,6}\Z"), st.sampled_from(["Buy", "a-b", "1a", "a\n", "a" * 65])
)
event_id = mostly(
    st.from_regex(r"\A[A-Za-z0-9._:/@+\-]{1,12}\Z"), st.sampled_from(["", "a b", "e\n", "e" * 129])
)
short = st.text(min_size=1, max_size=8)


@st.composite
def channel_events(draw: st.DrawFn) -> dict[str, Any]:
    """A channel_event.v1 document, usually valid; the mutations below break it."""
    doc: dict[str, Any] = {
        "event_id": draw(event_id),
        "occurred_at": draw(mostly(good_date_times, date_times())),
        "channel": draw(st.sampled_from(CHANNELS)),
        "touchpoint": draw(short),
        "identifiers": draw(
            st.dictionaries(st.sampled_from(IDENT_TYPES), st.text(max_size=12), min_size=1, max_size=3)
        ),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "schema_version": mostly(st.sampled_from(["1.0", "1.12"]), st.sampled_from(["2.0", "1.", "1.0\n"])),
        "direction": st.sampled_from(["inbound", "outbound"]),
        "visibility": st.sampled_from(["onstage", "offstage"]),
        "department": short,
        "intent": short,
        "emotion": short,
        "persona": short,
        "journey": st.fixed_dictionaries({"type": stage, "stage": stage}),
        "outcome": st.sampled_from(OUTCOMES),
        "sentiment": mostly(st.sampled_from([-1, 0, 1, 0.5, -0.25, 1.0]), st.sampled_from([1.5, -1.01])),
        "nps": mostly(st.sampled_from([0, 7, 10, 5.0]), st.sampled_from([11, -1, 7.5])),
        "device": st.fixed_dictionaries(
            {}, optional={"type": st.sampled_from(DEVICE_TYPES), "os": short, "model": short}
        ),
        "source": st.text(max_size=10),
        "attributes": st.dictionaries(
            st.text(max_size=6),
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=6),
            max_size=4,
        ),
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
        doc[name] = draw(optional[name])
    return doc


hex_str = st.text("0123456789abcdef", min_size=16, max_size=20)


@st.composite
def stitched_events(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": "1.0",
        "event_id": draw(event_id),
        "occurred_at": draw(good_date_times),
        "occurred_at_ms": draw(st.integers(0, 2**45) | st.just(1_793_700_000_000.0)),
        "channel": draw(st.sampled_from(CHANNELS)),
        "touchpoint": draw(short),
        "direction": draw(st.sampled_from(["inbound", "outbound"])),
        "visibility": draw(st.sampled_from(["onstage", "offstage"])),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "department": short,
        "intent": short,
        "outcome": short,
        "emotion": short,
        "persona": short,
        "source": short,
        "device_key": hex_str,
        "journey": st.fixed_dictionaries({"type": short, "stage": short}, optional={"extra": json_value}),
        "sentiment": st.sampled_from([-1, 0.5, 1, 1.5]),
        "nps": st.sampled_from([0, 10, 5.0, 11]),
        "device": st.dictionaries(st.text(max_size=5), json_value, max_size=3),
        "attributes": st.dictionaries(st.text(max_size=5), json_value, max_size=3),
        "merge_conflict": st.booleans(),
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
        doc[name] = draw(optional[name])
    doc["customer_id"] = "c_" + draw(hex_str)
    doc["identity_keys"] = draw(
        st.lists(st.builds(lambda t, h: f"{t}:{h}", st.sampled_from(IDENT_TYPES), hex_str), max_size=3)
    )
    if draw(st.booleans()):
        doc["masked"] = draw(st.dictionaries(st.sampled_from(IDENT_TYPES), short, max_size=2))
    doc["stitched_at_ms"] = draw(st.integers(0, 2**45))
    return doc


@st.composite
def identity_merges(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": "1.0",
        "record_id": "m_" + draw(hex_str),
        "kind": draw(st.sampled_from(["merge", "conflict"])),
        "survivor": "c_" + draw(hex_str),
        "loser": "c_" + draw(hex_str),
        "event_id": draw(short),
    }
    if draw(st.booleans()):
        doc["identifier_types"] = draw(st.lists(st.sampled_from(IDENT_TYPES), max_size=2))
    if draw(st.booleans()):
        doc["limit"] = draw(st.sampled_from(IDENT_TYPES))
    if draw(st.booleans()):
        doc["occurred_at_ms"] = draw(st.integers(0, 2**45))
    doc["recorded_at_ms"] = draw(st.integers(0, 2**45) | st.just(1e12))
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A document with 0-2 mutations: a field dropped, retyped, set to a near-miss value, or added."""
    doc = draw(base)
    for _ in range(draw(st.integers(0, 2))):
        target = doc
        # Sometimes mutate inside a nested object (identifiers, journey, device, attributes, masked).
        nested = [k for k, v in doc.items() if isinstance(v, dict)]
        if draw(st.booleans()) and nested:
            target = doc[draw(st.sampled_from(sorted(nested)))]
        keys = sorted(target)
        op = draw(st.sampled_from(["drop", "retype", "near", "add"]))
        if op == "add" or not keys:
            target[draw(st.sampled_from(["extra", "x", *IDENT_TYPES, "type"]) | st.text(max_size=70))] = draw(
                json_value
            )
            continue
        key = draw(st.sampled_from(keys))
        if op == "drop":
            del target[key]
        elif op == "retype":
            target[key] = draw(json_value)
        else:
            target[key] = draw(
                st.sampled_from(
                    [
                        "",
                        "web",
                        "inbound",
                        "1.0",
                        "c_0123456789abcdef",
                        0,
                        -1,
                        11,
                        2.0,
                        1e20,
                        True,
                        None,
                        [],
                        {},
                        "a" * 257,
                        "x\n",
                    ]
                )
                | date_times()
            )
    return doc
