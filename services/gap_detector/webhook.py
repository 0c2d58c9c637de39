"""Optional webhook for dropoff_spike alerts: Alertmanager- or Slack-compatible JSON, a bounded queue
(overflow is dropped and counted, never blocks the stream) and retries with exponential backoff."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from services.gap_detector.metrics import DetectorMetrics

log = logging.getLogger(__name__)


def alertmanager_body(alert: dict[str, Any]) -> list[dict[str, Any]]:
    """The Alertmanager v2 ``POST /api/v2/alerts`` body (a list of alerts)."""
    journey = alert.get("journey", {})
    ev = alert.get("evidence", {})
    return [
        {
            "labels": {
                "alertname": "JourneysDropoffSpike",
                "severity": alert["severity"],
                "journey": journey.get("type", ""),
                "stage": journey.get("stage", ""),
                "channel": ev.get("channel", ""),
                "alert_id": alert["alert_id"],
            },
            "annotations": {
                "summary": alert.get("title", ""),
                "description": f"rate {ev.get('rate')} vs baseline {ev.get('baseline')} "
                f"(factor {ev.get('factor')}, volume {ev.get('volume')})",
            },
            "startsAt": alert["occurred_at"],
        }
    ]


def slack_body(alert: dict[str, Any]) -> dict[str, Any]:
    return {"text": f":rotating_light: [{alert['severity']}] {alert.get('title', alert['type'])}"}


class WebhookSender:
    def __init__(
        self,
        url: str,
        fmt: str,
        queue_size: int,
        retries: int,
        metrics: DetectorMetrics,
        base_delay_s: float = 0.5,
    ) -> None:
        self.url, self.fmt, self.retries, self.m = url, fmt, max(1, retries), metrics
        self.base_delay_s = base_delay_s
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)

    def enqueue(self, alert: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.m.webhook.labels("dropped").inc()
            log.warning("webhook queue full; dropped alert %s", alert["alert_id"])

    def body(self, alert: dict[str, Any]) -> Any:
        return slack_body(alert) if self.fmt == "slack" else alertmanager_body(alert)

    async def run(self) -> None:
        """Deliver queued alerts until cancelled."""
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                alert = await self.queue.get()
                await self._deliver(session, alert)

    async def _deliver(self, session: aiohttp.ClientSession, alert: dict[str, Any]) -> None:
        for attempt in range(self.retries):
            try:
                async with session.post(self.url, json=self.body(alert)) as resp:
                    if resp.status < 300:
                        self.m.webhook.labels("ok").inc()
                        return
                    if 400 <= resp.status < 500 and resp.status != 429:
                        break  # the receiver refuses this body; retrying will not help
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("webhook attempt %d failed: %s", attempt + 1, exc)
            if attempt + 1 < self.retries:
                self.m.webhook.labels("retry").inc()
                await asyncio.sleep(self.base_delay_s * 2**attempt)
        self.m.webhook.labels("dropped").inc()
        log.warning("webhook gave up on alert %s", alert["alert_id"])
