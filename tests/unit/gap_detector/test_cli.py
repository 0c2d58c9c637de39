"""`journeys detector`: --help names every variable; bad settings and definitions are one-line errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from services.common.errors import UserError
from services.gap_detector import cli
from services.gap_detector.settings import GapDetectorSettings

pytestmark = pytest.mark.unit


def test_help_names_every_variable(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["detector", "--help"])
    text = capsys.readouterr().out
    for name in (
        "JOURNEYS_TIMER_CLOCK",
        "JOURNEYS_WATERMARK_LATENESS",
        "JOURNEYS_DEFINITIONS",
        "JOURNEYS_DETECTOR_METRICS_PORT",
        "JOURNEYS_ALERT_WEBHOOK_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
    ):
        assert name in text


def test_bad_setting_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_TIMER_CLOCK", "sometimes")
    with pytest.raises(UserError, match="JOURNEYS_TIMER_CLOCK"):
        cli.load_settings()


def test_bad_definitions_fail_before_anything_connects(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "defs.yaml"
    bad.write_text(
        'schema_version: "1.0"\nchannels: {assisted: [phone], self_service: [web]}\njourneys: {}\n'
    )
    monkeypatch.setenv("JOURNEYS_DEFINITIONS", str(bad))
    with pytest.raises(UserError, match=r"defs.yaml:3: field journeys"):
        cli.run(argparse.Namespace())


def test_settings_defaults_follow_the_brief(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JOURNEYS_DETECTOR_METRICS_PORT", "JOURNEYS_TIMER_CLOCK", "JOURNEYS_WATERMARK_LATENESS"):
        monkeypatch.delenv(name, raising=False)
    s = GapDetectorSettings()
    assert (s.metrics_port, s.timer_clock, s.lateness_ms) == (9102, "live", 300_000)
