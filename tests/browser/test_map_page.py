"""The journey map page in a real headless Chromium: it loads, a filter changes the figures, a pain point
lists its customers with links to the agent page, and nothing is loaded from elsewhere."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_agent_page import CHROMIUM, page  # noqa: F401  # the same headless Chromium fixture
from tests.integration.api.process import running_api
from tests.integration.journey_map.seed import fill_sync

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium"),
]
TOKEN = "map-token"
SHOTS = Path(os.environ.get("JOURNEYS_SCREENSHOT_DIR", "/tmp/journeys-screenshots"))


@pytest.fixture
def api(service_env: dict[str, str], redis_client: Any) -> Iterator[str]:
    events, alerts = fill_sync(service_env)
    assert events > 500 and alerts > 10
    with running_api(service_env, TOKEN) as base:
        yield base


def figures(pg: Any) -> dict[str, str]:
    ids = ("total-entries", "total-now", "total-dropoffs", "total-alerts")
    return {i: pg.inner_text(f"#{i}") for i in ids}


def test_map_loads_filters_change_figures_and_pain_points_list_customers(api: str, page: Any) -> None:  # noqa: F811
    requests: list[str] = []
    page_errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.goto(f"{api}/map")
    page.fill("#token", TOKEN)
    page.dispatch_event("#token", "change")
    page.wait_for_selector("#map:not([hidden])")
    page.select_option("#journey", "purchase")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('purchase')")
    everyone = figures(page)
    assert int(everyone["total-entries"].split()[0]) > 0
    assert page.locator("#lanes svg .crossing").count() >= 4  # stages x channels
    page.wait_for_function("() => /updated \\d+ s ago/.test(document.getElementById('updated').textContent)")

    # Charts drew: the funnel's bars, the sentiment curve with NPS, the Sankey of forward moves.
    page.wait_for_function(
        "() => window.echarts && ['funnel','emotion','sankey'].every("
        "id => echarts.getInstanceByDom(document.getElementById(id)))"
    )
    option = page.evaluate("""() => {
        const f = echarts.getInstanceByDom(document.getElementById('funnel')).getOption();
        const s = echarts.getInstanceByDom(document.getElementById('sankey')).getOption();
        return {funnel: f.series.map(x => x.name), links: s.series[0].links.length};
    }""")
    assert option["funnel"] == ["entries", "converted", "abandoned", "stalled"] and option["links"] >= 3
    assert page.locator("#persona-rows tr").count() >= 3  # drop-offs by persona, one row each
    page.wait_for_timeout(300)  # let the SVG charts finish their first paint for the screenshot
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "map_page.png"), full_page=True)

    # A persona filter changes the figures; back to every persona restores them.
    page.select_option("#persona", "digital_native")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('digital native')")
    assert figures(page) != everyone
    page.select_option("#persona", "")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('every persona')")
    assert figures(page) == everyone

    # A pain point lists the customers behind it, each linking to the agent page.
    page.locator("#lanes .painpt").first.click()
    page.wait_for_selector("#pain:not([hidden]) ul li a")
    href = page.locator("#pain ul li a").first.get_attribute("href")
    assert href.startswith("/agent#journey=c_")

    assert all(u.startswith(api) for u in requests), "the page must not load anything from elsewhere"
    assert page_errors == []


def test_wrong_token_is_explained(api: str, page: Any) -> None:  # noqa: F811
    page.goto(f"{api}/map")
    page.fill("#token", "wrong")
    page.dispatch_event("#token", "change")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('token was rejected')"
    )
