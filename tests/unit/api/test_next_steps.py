"""What comes next (services.api.core.next_steps): from the summary's current stage per journey and the
journey definitions, the next stages and the SLA deadline exactly as the detector arms its stall timer."""

from __future__ import annotations

import pytest

from services.api.core.next_steps import current_stages, what_next
from services.common.timeutil import format_ms
from services.gap_detector.core.definitions import load_definitions

pytestmark = pytest.mark.unit
DEFS = load_definitions()  # the bundled default_journeys.yaml
T = 1_793_000_000_000
H = 3_600_000


def summary(**stages: tuple[str, int]) -> dict[bytes, bytes]:
    out = {b"count": b"4", b"last_ms": str(T).encode()}
    for journey, (stage, at) in stages.items():
        out[f"stage:{journey}".encode()] = stage.encode()
        out[f"stage_ms:{journey}".encode()] = str(at).encode()
    return out


def test_current_stage_next_stages_and_time_left() -> None:
    [j] = what_next(summary(purchase=("checkout", T)), DEFS, T + 30 * 60_000)
    assert j["journey"] == "purchase" and j["stage"] == "checkout" and j["known"]
    assert j["next_stages"] == ["payment"] and j["outcomes"] == ["abandoned", "converted"]
    assert j["sla_seconds"] == 7200 and j["since"] == format_ms(T)
    assert j["deadline"] == format_ms(T + 2 * H) and j["seconds_left"] == 90 * 60
    assert not j["stalled"]


def test_deadline_matches_the_detectors_timer() -> None:
    # The detector arms entry time + the stage's SLA (core/logic.py _progress); the page counts to it.
    for journey, stage in (("onboarding", "identity_verification"), ("upgrade", "quote")):
        [j] = what_next(summary(**{journey: (stage, T)}), DEFS, T)
        assert j["seconds_left"] * 1000 == DEFS.sla_ms(journey, stage)


def test_overdue_is_negative_and_most_urgent_first() -> None:
    s = summary(onboarding=("signup", T - 30 * H), purchase=("payment", T), upgrade=("consider", T))
    got = what_next(s, DEFS, T + H // 2)
    assert [j["journey"] for j in got] == ["onboarding", "purchase", "upgrade"]
    assert got[0]["seconds_left"] == -(6 * H + H // 2) / 1000  # 1 d SLA, entered 30 h before
    assert got[1]["next_stages"] == []  # payment is the last stage: only the outcomes follow
    assert got[2]["next_stages"] == ["quote", "credit_check", "confirm"]


def test_finished_journeys_are_not_listed() -> None:
    assert what_next(summary(purchase=("converted", T), upgrade=("declined", T)), DEFS, T) == []


def test_unknown_journey_or_stage_gets_the_default_sla_and_no_next() -> None:
    s = summary(returns=("label", T), purchase=("gift_wrap", T))
    got = {j["journey"]: j for j in what_next(s, DEFS, T)}
    assert got["returns"]["known"] is False and got["returns"]["next_stages"] == []
    assert got["returns"]["sla_seconds"] * 1000 == DEFS.defaults.default_stall_sla_ms
    assert got["purchase"]["known"] is False and got["purchase"]["outcomes"] == ["abandoned", "converted"]


def test_without_a_stage_time_there_is_no_countdown() -> None:
    [j] = what_next({b"stage:purchase": b"cart"}, DEFS, T)
    assert j["deadline"] is None and j["seconds_left"] is None and j["next_stages"] == ["checkout", "payment"]
    bad_time = {"stage:purchase": "cart", "stage_ms:purchase": "oops"}
    assert current_stages(bad_time) == {"purchase": ("cart", None)}


def test_a_stall_alert_marks_its_journey_stalled() -> None:
    stall = {"type": "stall", "status": "open", "journey": {"type": "purchase", "stage": "checkout"}}
    other = {"type": "channel_switch", "status": "open", "journey": {"type": "upgrade"}}
    got = {
        j["journey"]: j["stalled"]
        for j in what_next(summary(purchase=("checkout", T), upgrade=("quote", T)), DEFS, T, [stall, other])
    }
    assert got == {"purchase": True, "upgrade": False}
