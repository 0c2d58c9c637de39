"""Publishes an agent's change of an alert on ``gap-alerts``: the same alert id, key and CloudEvents headers
as the detector's records of it (so it lands on the same partition, after them), the document with its
``handling``. confluent-kafka with the services' client configuration (security included); the producer
is made on first use, so an API without Kafka still serves reads.

Delivery is awaited before the API answers: an agent is told "done" only once the broker has the record.
When it fails the handling is stored already and the API answers 503; the same request again finds the
handling unchanged and publishes it again (the same record: readers keep the last one per alert id).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from services.common.kafka_config import producer_config
from services.common.runtime import ce_headers
from services.common.settings import CommonSettings

log = logging.getLogger(__name__)
CE_TYPE = b"dev.journeys.gap_alert.v1"
CE_SOURCE = b"journeys/api"


class PublishFailed(RuntimeError):
    """The broker did not acknowledge the record in time (503: retry)."""


class AlertPublisher:
    def __init__(self, settings: CommonSettings, timeout_s: float = 10.0) -> None:
        self.settings, self.timeout_s = settings, timeout_s
        self.topic = settings.topic_gap_alerts
        self._producer: Producer | None = None

    def _client(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(
                {**producer_config(self.settings), "message.timeout.ms": int(self.timeout_s * 1000)}
            )
        return self._producer

    async def publish(self, alert: dict[str, Any]) -> None:
        """Produce one alert document and wait for the broker's acknowledgement."""
        producer = self._client()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            def settle() -> None:
                if done.done():
                    return
                if err is None:
                    done.set_result(None)
                else:
                    done.set_exception(PublishFailed(f"gap-alerts: {err.str()}"))

            loop.call_soon_threadsafe(settle)

        headers: list[tuple[str, str | bytes | None]] = [
            *ce_headers(CE_TYPE, CE_SOURCE, str(alert["alert_id"]), str(alert["detected_at"]))
        ]
        try:
            producer.produce(
                self.topic,
                key=str(alert["customer_id"]).encode(),
                value=orjson.dumps(alert),
                headers=headers,
                on_delivery=delivered,
            )
        except (KafkaException, BufferError) as exc:  # a full local queue: the broker is away for long
            raise PublishFailed(f"gap-alerts: {exc}") from exc
        # Delivery callbacks run inside poll/flush: flush in a thread so the event loop keeps serving.
        remaining = await asyncio.to_thread(producer.flush, self.timeout_s)
        if remaining and not done.done():
            raise PublishFailed("gap-alerts: the broker did not acknowledge in time")
        await asyncio.wait_for(done, timeout=1.0)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.timeout_s)
            self._producer = None
