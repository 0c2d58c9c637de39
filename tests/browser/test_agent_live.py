"""The live agent page in Debian's Chromium, against ``journeys api`` on real Redis and Kafka: while the
page is open a real detector processor raises an alert and a new touchpoint is stitched; both appear
without a reload; the agent acknowledges the alert with a note and a second agent's page shows it too;
"what comes next" counts down to the SLA; the stream comes back by itself after the API restarts."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from services.common.keys import Keys
from services.common.timeutil import format_ms, now_ms
from tests.conftest import Infra, Topics
from tests.helpers import free_port, http_ok, poll, stop_process
from tests.integration.api.journey_seed import Customer, seed
from tests.integration.api.process import JOURNEYS
from tests.integration.gap_detector.harness import AlertReader, create_topics, stitched
from tests.integration.gap_detector.processors import Proc

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium"),
]
TOKEN = "browser-live-token"
SHOTS = Path(os.environ.get("JOURNEYS_SCREENSHOT_DIR", "/tmp/journeys-screenshots"))
CID = "c_1a1a1a1a2b2b2b2b"
ACCOUNT = "acc-live-1"


def tp(eid: str, at_ms: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": eid,
        "occurred_at": format_ms(at_ms),
        "channel": "phone",
        "touchpoint": "agent_call",
        "intent": "billing",
        "department": "billing",
        **extra,
    }


@contextmanager
def api_on(env: dict[str, str], port: int) -> Iterator[str]:
    proc = subprocess.Popen(
        [JOURNEYS, "api"],
        env={**env, "JOURNEYS_API_PORT": str(port), "JOURNEYS_API_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        poll(lambda: proc.poll() is not None or http_ok(f"{base}/healthz"), timeout=30, what="the API")
        assert proc.poll() is None, "journeys api exited"
        yield base
    finally:
        stop_process(proc)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
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
        yield b
        b.close()


def agent_page(browser: Any, base: str) -> Any:
    page = browser.new_context(viewport={"width": 1360, "height": 1300}).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/agent")
    page.evaluate(f"sessionStorage.setItem('journeys.token', '{TOKEN}')")
    page.goto(f"{base}/agent#account_id={ACCOUNT}")
    page.wait_for_selector("#journey:not([hidden])")
    page.wait_for_selector("#live[data-state=on]")
    page.evaluate("window.notReloaded = true")  # gone if anything reloads the page
    return page


def run(coro_factory: Any) -> Any:
    """Run a coroutine on its own loop in a thread (Playwright's sync API owns this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result(timeout=60)


def test_alert_arrives_live_is_acknowledged_and_every_agent_sees_it(
    browser: Any,
    service_env: dict[str, str],
    infra: Infra,
    topics: Topics,
    redis_client: Any,
    key_prefix: str,
) -> None:
    from services.api.settings import ApiSettings

    create_topics(infra, topics)
    settings = ApiSettings.model_validate({k: v for k, v in service_env.items() if k.startswith("JOURNEYS_")})
    keys = Keys(key_prefix)
    t0 = now_ms() - 3_600_000
    events = [tp("c-1", t0, journey={"type": "purchase", "stage": "checkout"})]
    seed(redis_client, keys, settings, [Customer(CID, {"account_id": ACCOUNT}, events)])
    errors: list[str] = []
    with api_on(service_env, free_port()) as base:
        page, other = agent_page(browser, base), agent_page(browser, base)
        page.on("pageerror", lambda e: errors.append(str(e)))
        assert page.locator(".alert").count() == 0 and page.inner_text("#live") == "● live"

        # What comes next: checkout entered an hour ago, 2 h SLA, payment next; the countdown ticks.
        row = page.locator("#next .next-row[data-journey=purchase]")
        assert "checkout" in row.inner_text() and "payment" in row.inner_text()
        shown = row.locator(".countdown").inner_text()
        assert "59 min" in shown or "58 min" in shown, shown
        page.wait_for_function("t => document.querySelector('#next .countdown').textContent !== t", arg=shown)

        # The detector raises a repeat-contact alert while the page is open: it appears, no reload.
        async def three_calls() -> None:
            proc = Proc(infra.redis_url, key_prefix)
            try:
                await proc.events(
                    [
                        stitched(f"c-{n}", CID, t0 + n * 60_000, channel="phone", intent="billing")
                        for n in (1, 2, 3)
                    ]
                )
            finally:
                await proc.close()

        run(three_calls)
        page.wait_for_selector(".alert .act-acknowledge", timeout=5_000)
        assert "Repeat contact" in page.inner_text("#alerts")

        # A touchpoint stitched meanwhile shows up too.
        events.append(tp("c-9", t0 + 10 * 60_000, journey={"type": "purchase", "stage": "payment"}))
        seed(redis_client, keys, settings, [Customer(CID, {"account_id": ACCOUNT}, events)])
        page.wait_for_function("() => document.querySelectorAll('#rows tr').length === 2", timeout=5_000)
        page.wait_for_function(
            "() => document.querySelector('#next .next-row .step.here').textContent === 'payment'"
        )

        # The agent acknowledges with a note; this page and the other agent's page show it.
        page.fill(".alert input[name=note]", "calling back at 3pm")
        page.click(".alert .act-acknowledge")
        page.wait_for_selector(".alert.acknowledged .handled", timeout=5_000)
        handled = page.inner_text(".alert .handled")
        assert "Acknowledged by token" in handled and "calling back at 3pm" in handled
        other.wait_for_selector(".alert.acknowledged .handled", timeout=5_000)
        assert page.locator(".alert .act-acknowledge").count() == 0  # only resolve is left
        page.wait_for_function(  # sent, so cleared (once the answer is in; the redraw may come first)
            "() => document.querySelector('.alert input[name=note]').value === ''"
        )
        assert page.evaluate("window.notReloaded") is True and other.evaluate("window.notReloaded") is True

        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "agent_live.png"), full_page=True)

        # ... and it went out on gap-alerts as an update of the same alert id.
        reader = AlertReader(infra, topics.gap_alerts)
        try:
            acks = poll(lambda: [a for a in reader.read() if a.get("handling")], timeout=15, what="the ack")
        finally:
            reader.close()
        assert acks[0]["handling"]["note"] == "calling back at 3pm" and acks[0]["type"] == "repeat_contact"

        # Resolving takes it off both screens.
        page.click(".alert .act-resolve")
        other.wait_for_function("() => document.querySelectorAll('.alert').length === 0", timeout=5_000)
    assert errors == []


def test_the_page_reconnects_after_the_api_restarts(
    browser: Any, service_env: dict[str, str], redis_client: Any, key_prefix: str
) -> None:
    from services.api.settings import ApiSettings

    settings = ApiSettings.model_validate({k: v for k, v in service_env.items() if k.startswith("JOURNEYS_")})
    keys = Keys(key_prefix)
    events = [tp("r-1", now_ms() - 60_000)]
    seed(redis_client, keys, settings, [Customer(CID, {"account_id": ACCOUNT}, events)])
    port = free_port()
    with api_on(service_env, port) as base:
        page = agent_page(browser, base)
    page.wait_for_selector("#live[data-state=down]", timeout=10_000)
    assert "offline" in page.inner_text("#live")
    events.append(tp("r-2", now_ms()))  # written while the page was offline
    seed(redis_client, keys, settings, [Customer(CID, {"account_id": ACCOUNT}, events)])
    with api_on(service_env, port):
        page.wait_for_selector("#live[data-state=on]", timeout=20_000)
        page.wait_for_function("() => document.querySelectorAll('#rows tr').length === 2", timeout=5_000)
        assert page.evaluate("window.notReloaded") is True
