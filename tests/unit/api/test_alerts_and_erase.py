from __future__ import annotations

import orjson
import pytest

from services.api.core.alerts import belongs_to, select_alerts, timer_belongs_to
from services.api.core.erase import customer_keys, existence_probes
from services.api.core.queries import AlertFilter
from services.common.keys import Keys

pytestmark = pytest.mark.unit


def alert(alert_id: str, type_: str, detected: str, cid: str | None = "c_0123456789abcdef") -> bytes:
    a = {
        "schema_version": "1.0",
        "alert_id": alert_id,
        "type": type_,
        "severity": "low",
        "detected_at": detected,
        "occurred_at": "2026-11-02T08:00:00Z",
        "evidence": {},
    }
    if cid:
        a["customer_id"] = cid
    return orjson.dumps(a)


RAW = [
    alert("a_" + "1" * 16, "stall", "2026-11-02T08:00:00Z"),
    alert("a_" + "2" * 16, "channel_switch", "2026-11-02T08:00:00.500+00:00"),
    alert("a_" + "3" * 16, "dropoff_spike", "2026-11-02T07:59:59Z", cid=None),
    alert("a_" + "4" * 16, "stall", "2026-11-02T08:59:00+01:00", cid="c_9999999999999999"),
    b"not json",
]


def ids(alerts: list[dict[str, object]]) -> list[str]:
    return [str(a["alert_id"])[2:3] for a in alerts]


def test_newest_detection_first_comparing_instants_not_strings() -> None:
    assert ids(select_alerts(RAW, AlertFilter(), None)) == ["2", "1", "3", "4"]


def test_filters_and_limit() -> None:
    assert ids(select_alerts(RAW, AlertFilter(types=frozenset({"stall"})), None)) == ["1", "4"]
    assert ids(select_alerts(RAW, AlertFilter(), {"c_9999999999999999"})) == ["4"]
    assert ids(select_alerts(RAW, AlertFilter(limit=2), None)) == ["2", "1"]


def test_ownership_of_stored_alerts_and_timers() -> None:
    assert belongs_to(RAW[0], {"c_0123456789abcdef"})
    assert not belongs_to(RAW[2], {"c_0123456789abcdef"}) and not belongs_to(b"{", {"c_1"})
    assert timer_belongs_to(b"c_0123456789abcdef|purchase", {"c_0123456789abcdef"})
    assert not timer_belongs_to(b"c_0123456789abcdef0|purchase", {"c_0123456789abcdef"})


def test_erasure_covers_every_scoped_key_of_every_id_in_both_alias_directions() -> None:
    k = Keys("p")
    plan = customer_keys(k, ["c_a", "c_b"])
    for cid in ("c_a", "c_b"):
        assert {k.customer(cid), k.customer_ids(cid), k.alias(cid), k.aliases_of(cid)} <= set(plan)
        assert set(k.customer_scoped(cid)) <= set(plan)
        assert set(existence_probes(k, [cid])) <= set(plan) | {k.timeline(cid)}
    assert len(plan) == len(set(plan))


def test_erasure_steps_each_stay_in_one_slot_and_drop_the_graph_last() -> None:
    from services.api.core.erase import erase_steps, graph_keys
    from services.common.redis_conn import slot_of

    k = Keys("p")
    cids = ["c_a", "c_b"]
    steps = erase_steps(
        k,
        cids,
        id_keys=[k.identifier("email:x")],
        outcome_keys=[k.merge_outcome("e1")],
        timers={k.timers: [b"c_a|buy"], k.timers_inflight: []},
        alert_ids=[b"al1"],
    )
    for step in steps:
        keys = [step.slot_key]
        for command in step.commands:
            if command.method == "eval":
                keys += list(command.args[2 : 2 + command.args[1]])
            else:
                keys += [a for a in command.args if isinstance(a, str)]
        assert {slot_of(key) for key in keys} == {slot_of(step.slot_key)}, step
    deleted = [a for s in steps for c in s.commands if c.method == "delete" for a in c.args]
    assert set(customer_keys(k, cids)) | {k.merge_outcome("e1")} == set(deleted)
    # The aliases and id sets an erasure is found again through go last; merge outcomes (found through the
    # timelines) and identifiers (through the id sets) go first.
    assert list(steps[-1].commands[0].args) == graph_keys(k, cids)
    assert steps[-2].commands[0].args == (k.handled_customers, b"c_a", b"c_b")  # after the handling hashes
    assert [c.method for c in steps[0].commands] == ["delete", "eval"]
    assert len(steps) == 1 + 1 + 1 + len(cids) + 1 + 1
    bare = erase_steps(k, cids, id_keys=[], outcome_keys=[], timers={}, alert_ids=[])
    assert [c.method for s in bare for c in s.commands] == ["delete"] * len(cids) + ["srem", "delete"]
