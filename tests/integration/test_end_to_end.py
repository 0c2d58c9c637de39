"""End to end on real Kafka + Redis: channel-events -> `journeys stitcher` -> stitched-events and
identity-merges -> `journeys detector` -> gap-alerts. A failed app checkout followed by a phone call from
the same customer, first known under another identity (so the call merges two customers), raises a
high channel_switch; the call's checkout stage then stalls by the event-time watermark."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.common.timeutil import format_ms, now_ms
from services.stack.kafka_broker import create_topics
from tests.conftest import Infra, Topics
from tests.helpers import free_port, poll, stop_process
from tests.integration.gap_detector.harness import ROOT, AlertReader, Worker, detector_env

pytestmark = pytest.mark.integration

MIN = 60_000


def channel_event(eid: str, t: int, channel: str, ids: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": "1.0",
        "event_id": eid,
        "occurred_at": format_ms(t),
        "channel": channel,
        "touchpoint": extra.pop("touchpoint", "tp"),
        "identifiers": ids,
        "direction": "inbound",
        "visibility": "onstage",
        **extra,
    }


def test_failed_app_checkout_then_call_raises_channel_switch_and_stall(
    service_env: dict[str, str],
    infra: Infra,
    topics: Topics,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    from kafka import KafkaProducer

    create_topics(
        infra.bootstrap_servers,
        [
            topics.channel_events,
            topics.dlq,
            topics.stitched_events,
            topics.identity_merges,
            topics.gap_alerts,
        ],
        4,
    )
    stitcher_log = tmp_path / "stitcher.log"
    with stitcher_log.open("ab") as out:
        stitcher = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "stitcher"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                **service_env,
                "JOURNEYS_STITCHER_METRICS_PORT": str(free_port()),
                "JOURNEYS_STITCHER_GROUP": f"st-{key_prefix}",
            },
        )
    detector = Worker(detector_env(service_env, key_prefix), tmp_path / "detector.log")
    alerts = AlertReader(infra, topics.gap_alerts)
    try:
        poll(
            lambda: stitcher.poll() is not None or b"stitcher ready" in stitcher_log.read_bytes(),
            timeout=60,
            what="stitcher ready",
        )
        assert stitcher.poll() is None, stitcher_log.read_text()[-3000:]
        detector.wait_ready()
        t0 = now_ms() - 3 * 60 * MIN
        email, phone = f"ana.{key_prefix}@example.com", "+44 20 7946 0958"
        checkout = {"type": "purchase", "stage": "checkout"}  # sla 2h
        events = [
            channel_event(
                "web-1",
                t0,
                "web",
                {"email": email, "cookie_id": f"ck_{key_prefix}"},
                journey={"type": "purchase", "stage": "browse"},
                touchpoint="login",
            ),
            channel_event(
                "app-1",
                t0 + MIN,
                "mobile_app",
                {"email": email, "device_id": f"d_{key_prefix}"},
                journey=checkout,
                outcome="failure",
                touchpoint="checkout_payment",
            ),
            # The same person, known so far only by phone (another customer until the call links them).
            channel_event("ivr-1", t0 + 2 * MIN, "ivr", {"phone": phone}, touchpoint="ivr_menu"),
            channel_event(
                "call-1",
                t0 + 5 * MIN,
                "phone",
                {"phone": phone, "email": email},
                journey=checkout,
                touchpoint="agent_call",
                department="sales",
            ),
            # Another customer's event moves the event-time watermark past the call's checkout SLA.
            channel_event(
                "adv-1",
                t0 + 5 * MIN + 2 * 60 * MIN + 5 * MIN + 1000,
                "web",
                {"cookie_id": f"other_{key_prefix}"},
            ),
        ]
        producer = KafkaProducer(bootstrap_servers=infra.bootstrap_servers)
        for ev in events:  # one partition keeps arrival order = event order for the identity graph
            producer.send(topics.channel_events, orjson.dumps(ev), partition=0).get(timeout=30)
        producer.close()

        def call_switch() -> list[dict[str, Any]]:
            return [a for a in alerts.of("channel_switch") if a["evidence"]["event_ids"][-1] == "call-1"]

        [switch] = poll(call_switch, timeout=90, what="channel_switch alert raised by the call")
        assert switch["evidence"]["event_ids"] == ["app-1", "call-1"]
        assert switch["evidence"]["channels"] == ["mobile_app", "phone"] and switch["severity"] == "high"
        [stall] = poll(lambda: alerts.of("stall"), timeout=90, what="stall alert")
        assert stall["evidence"]["event_ids"] == ["call-1"] and stall["journey"]["stage"] == "checkout"
        assert stall["customer_id"] == switch["customer_id"]
        merges = merge_records(infra, topics.identity_merges)
        assert any(m["kind"] == "merge" for m in merges), merges
    finally:
        alerts.close()
        detector.stop()
        stop_process(stitcher)


def merge_records(infra: Infra, topic: str) -> list[dict[str, Any]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=infra.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    try:
        return [orjson.loads(r.value) for r in consumer]
    finally:
        consumer.close()
