"""The agent page in a real headless Chromium: search a caller, see the journey and the alert."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.keys import Keys
from tests.integration.api import story
from tests.integration.api.journey_seed import add_recent_alerts, seed
from tests.integration.api.process import running_api

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium"),
]
TOKEN = "browser-token"
SHOTS = Path(os.environ.get("JOURNEYS_SCREENSHOT_DIR", "/tmp/journeys-screenshots"))


@pytest.fixture
def api(service_env: dict[str, str], redis_client: Any, key_prefix: str) -> Iterator[str]:
    from services.api.settings import ApiSettings

    settings = ApiSettings.model_validate({k: v for k, v in service_env.items() if k.startswith("JOURNEYS_")})
    keys = Keys(key_prefix)
    seed(redis_client, keys, settings, [story.alice(), story.alice_old(), story.bob()])
    add_recent_alerts(redis_client, keys, story.ALL_ALERTS)
    with running_api(service_env, TOKEN) as base:
        yield base


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(viewport={"width": 1360, "height": 1250})
        pg = context.new_page()
        pg.set_default_timeout(15_000)
        yield pg
        browser.close()


def test_search_by_phone_shows_timeline_alert_and_sentiment(api: str, page: Any) -> None:
    requests: list[str] = []
    page_errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.goto(f"{api}/agent")
    page.fill("#token", TOKEN)
    page.fill("#query", "07700 900958")
    page.click("button[type=submit]")

    page.wait_for_selector("#journey:not([hidden])")
    assert page.inner_text("#cid") == story.ALICE
    assert "•••• 0958" in page.inner_text("#ids") and "a***@example.com" in page.inner_text("#ids")
    alert = page.locator(".alert.high")
    assert alert.count() == 1
    text = alert.inner_text()
    assert "Channel switch" in text and "App checkout failed, then called" in text
    assert "app → phone" in text and "checkout payment" in text and "agent call" in text
    assert page.inner_text("#nps").startswith("3") and "detractor" in page.inner_text("#nps")
    stages = page.inner_text("#stages")
    assert "browse" in stages and "payment" in stages
    assert page.locator(".step.current").inner_text().startswith("payment")
    rows = page.locator("#rows tr")
    assert rows.count() == len(story.ALICE_EVENTS)
    assert "nps survey" in rows.first.inner_text()  # latest first
    assert page.locator("#rows tr.flagged").count() == 2  # the alert's evidence
    assert "offstage" in page.locator("#rows tr[data-event-id=risk-1]").inner_text()

    # The chart drew: touchpoints per channel lane, the sentiment curve and the NPS marker.
    page.wait_for_function(
        "() => window.echarts && echarts.getInstanceByDom(document.getElementById('chart'))"
    )
    option = page.evaluate("""() => {
        const o = echarts.getInstanceByDom(document.getElementById('chart')).getOption();
        return {lanes: o.yAxis[0].data, series: o.series.map(s => [s.name, s.data.length]),
                nps: o.series[3].markLine.data.length};
    }""")
    assert option["lanes"] == ["web", "mobile_app", "other", "email", "phone", "sms"]
    assert dict(option["series"]) == {"path": 6, "alert": 2, "touchpoints": 6, "sentiment": 4}
    assert option["nps"] == 1
    assert page.locator("#chart canvas").count() >= 1

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "agent_page.png"), full_page=True)
    assert all(u.startswith(api) for u in requests), "the page must not load anything from elsewhere"
    assert page_errors == []


def test_wrong_token_and_unknown_caller_are_explained(api: str, page: Any) -> None:
    page.goto(f"{api}/agent")
    page.fill("#token", "wrong")
    page.fill("#query", "alice.smith@example.com")
    page.click("button[type=submit]")
    page.wait_for_selector(".status.error")
    assert "token was rejected" in page.inner_text("#status")

    page.fill("#token", TOKEN)
    page.fill("#query", "+44 7700 900000")
    page.click("button[type=submit]")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('No journey')")
    assert page.locator("#journey").is_hidden()


def test_screen_pop_from_the_url_fragment(api: str, page: Any) -> None:
    page.goto(f"{api}/agent")
    page.evaluate(f"sessionStorage.setItem('journeys.token', '{TOKEN}')")
    page.goto(f"{api}/agent#journey={story.BOB}")
    page.wait_for_selector("#journey:not([hidden])")
    assert page.inner_text("#cid") == story.BOB
    assert "Repeat contact" in page.inner_text("#alerts")


def test_text_from_channel_systems_is_shown_never_run(
    api: str, page: Any, redis_client: Any, key_prefix: str, service_env: dict[str, str]
) -> None:
    from services.api.settings import ApiSettings
    from tests.integration.api.journey_seed import Customer

    evil = '<img src=x onerror="window.pwned=1">'
    settings = ApiSettings.model_validate({k: v for k, v in service_env.items() if k.startswith("JOURNEYS_")})
    seed(
        redis_client,
        Keys(key_prefix),
        settings,
        [
            Customer(
                "c_e0e0e0e0e0e0e0e0",
                {"account_id": "acc-9"},
                [
                    {
                        "event_id": "x-1",
                        "occurred_at": "2026-11-02T10:00:00Z",
                        "channel": "web",
                        "touchpoint": evil,
                        "department": evil,
                        "emotion": evil,
                        "sentiment": 0.1,
                    }
                ],
            )
        ],
    )
    page.goto(f"{api}/agent")
    page.fill("#token", TOKEN)
    page.select_option("#kind", "account_id")
    page.fill("#query", "acc-9")
    page.click("button[type=submit]")
    page.wait_for_selector("#journey:not([hidden])")
    page.hover("#chart canvas", position={"x": 600, "y": 150})
    assert evil.replace("_", " ") in page.inner_text("#rows")
    assert page.evaluate("window.pwned") is None
    assert page.locator("#rows img").count() == 0
