"""The drop-off webhook against a real local HTTP receiver: Alertmanager and Slack bodies, retry with
backoff after a failure, a bounded queue that drops (and counts) overflow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from services.gap_detector.core.definitions import load_definitions
from services.gap_detector.core.dropoff import cell_key, judge
from services.gap_detector.metrics import DetectorMetrics
from services.gap_detector.webhook import WebhookSender

pytestmark = pytest.mark.integration

T0 = 1_793_599_980_000


def spike() -> dict[str, Any]:
    alert = judge(
        cell_key("purchase", "payment", "web"), T0, 40, 20, [(100, 5)], load_definitions(), T0
    ).alert
    assert alert is not None
    return alert


async def receiver(fail_first: int) -> tuple[web.AppRunner, str, list[Any]]:
    got: list[Any] = []
    calls = [0]

    async def hook(request: web.Request) -> web.Response:
        calls[0] += 1
        if calls[0] <= fail_first:
            return web.Response(status=503)
        got.append(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/hook", got


async def until(cond: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)  # yield to the sender task while polling


@pytest.mark.parametrize("fmt", ["alertmanager", "slack"])
async def test_delivers_after_a_retry(fmt: str) -> None:
    runner, url, got = await receiver(fail_first=1)
    metrics = DetectorMetrics()
    sender = WebhookSender(url, fmt, queue_size=10, retries=3, metrics=metrics, base_delay_s=0.01)
    task = asyncio.create_task(sender.run())
    try:
        sender.enqueue(spike())
        await until(lambda: got)
        if fmt == "alertmanager":
            [alert] = got[0]
            assert alert["labels"]["alertname"] == "JourneysDropoffSpike"
            assert alert["labels"]["stage"] == "payment" and alert["startsAt"].startswith("2026-")
        else:
            assert "Drop-offs at purchase/payment" in got[0]["text"]
        assert (
            metrics.registry.get_sample_value("journeys_webhook_deliveries_total", {"outcome": "retry"}) == 1
        )
        assert metrics.registry.get_sample_value("journeys_webhook_deliveries_total", {"outcome": "ok"}) == 1
    finally:
        task.cancel()
        await runner.cleanup()


async def test_full_queue_drops_and_counts() -> None:
    metrics = DetectorMetrics()
    sender = WebhookSender(
        "http://127.0.0.1:9/none", "alertmanager", queue_size=2, retries=1, metrics=metrics
    )
    for _ in range(5):
        sender.enqueue(spike())
    assert sender.queue.qsize() == 2
    assert metrics.registry.get_sample_value("journeys_webhook_deliveries_total", {"outcome": "dropped"}) == 3
