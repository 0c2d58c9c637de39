"""The journey definitions loader: the bundled file, overrides, and bad files naming line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.errors import UserError
from services.gap_detector.core.definitions import load_definitions, parse_definitions

pytestmark = pytest.mark.unit

MINIMAL = """\
schema_version: "1.0"
channels:
  assisted: [phone]
  self_service: [web]
defaults:
  default_stall_sla: 1h
journeys:
  support:
    stages:
      - {name: report, sla: 4h, importance: 3}
      - {name: diagnose}
    terminal: [resolved]
    thresholds:
      repeat_contact_count: 5
"""


def test_bundled_definitions_load() -> None:
    d = load_definitions()
    assert {"onboarding", "purchase", "upgrade", "technical_issue"} <= set(d.journeys)
    assert "phone" in d.assisted and "web" in d.self_service
    assert d.sla_ms("purchase", "payment") == 3_600_000
    assert d.is_terminal("purchase", "converted") and not d.is_terminal("purchase", "payment")
    assert d.thresholds("purchase").channel_switch_window_ms == 3_600_000
    assert d.thresholds(None).channel_switch_window_ms == 1_800_000
    assert d.importance["checkout_payment"] == 3.0


def test_type_overrides_defaults_and_stage_falls_back_to_default_sla() -> None:
    d = parse_definitions(MINIMAL)
    assert d.thresholds("support").repeat_contact_count == 5
    assert d.thresholds("support").default_stall_sla_ms == 3_600_000
    assert d.thresholds("unknown").repeat_contact_count == 3  # built-in default
    assert d.sla_ms("support", "diagnose") == 3_600_000
    assert d.sla_ms("support", "not_a_stage") == 3_600_000
    assert d.sla_ms("unknown", "x") == 3_600_000
    stage = d.stage("support", "report")
    assert stage is not None and stage.importance == 3.0 and stage.sla_ms == 4 * 3_600_000
    assert d.stage("support", "nope") is None and not d.is_terminal("unknown", "resolved")


def test_bad_duration_names_line_and_field() -> None:
    bad = MINIMAL.replace("sla: 4h", "sla: four hours")
    with pytest.raises(UserError) as err:
        parse_definitions(bad, "defs.yaml")
    assert str(err.value).startswith("defs.yaml:10: field journeys/support/stages/0/sla:")


def test_missing_terminal_names_the_journey_line() -> None:
    bad = MINIMAL.replace("    terminal: [resolved]\n", "")
    with pytest.raises(UserError, match=r"defs.yaml:8: field journeys/support: .*terminal"):
        parse_definitions(bad, "defs.yaml")


def test_a_channel_that_is_not_a_name_names_line() -> None:
    # Channel names are open (a deployment may call a channel 'kiosk'), but they are names.
    assert parse_definitions(MINIMAL.replace("self_service: [web]", "self_service: [web, kiosk]"))
    bad = MINIMAL.replace("self_service: [web]", "self_service: [web, Fax]")
    with pytest.raises(UserError, match=r":4: field channels/self_service/1:"):
        parse_definitions(bad)


def test_stage_that_is_also_terminal_is_refused() -> None:
    bad = MINIMAL.replace("terminal: [resolved]", "terminal: [resolved, diagnose]")
    with pytest.raises(UserError, match=r":11: field journeys/support/stages/1/name: .*also terminal"):
        parse_definitions(bad)


def test_json_file_and_broken_syntax(tmp_path: Path) -> None:
    good = tmp_path / "defs.json"
    good.write_text(
        '{"schema_version": "1.0", "channels": {"assisted": ["phone"], "self_service": []},\n'
        ' "journeys": {"x": {"stages": [{"name": "a", "sla": "bad"}], "terminal": ["done"]}}}'
    )
    with pytest.raises(UserError, match=r"defs.json:2: field journeys/x/stages/0/sla"):
        load_definitions(good)
    broken = tmp_path / "broken.yaml"
    broken.write_text("journeys: [\n  a: b\n")
    with pytest.raises(UserError, match=r"broken.yaml:\d+: not valid YAML"):
        load_definitions(broken)
    with pytest.raises(UserError, match="cannot read"):
        load_definitions(tmp_path / "missing.yaml")
