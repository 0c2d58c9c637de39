"""Fill the journey map from a simulated population without Kafka: the simulator's true customers' events
as stitched events (one customer id per true customer), plus stall alerts on some, written through the
worker's handler onto the real Redis (browser test, screenshots for docs)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson

from services.common.kafka_loop import Record
from services.common.redis_conn import connect
from services.common.timeutil import format_ms, now_ms, parse_rfc3339_ms
from services.gap_detector.core.definitions import load_definitions
from services.journey_map.metrics import MapMetrics
from services.journey_map.settings import JourneyMapSettings
from services.journey_map.worker import build
from services.simulator.generator import SimConfig, generate

DAY_MS = 86_400_000


def cid_of(true_id: str) -> str:
    return "c_" + hashlib.sha256(true_id.encode()).hexdigest()[:16]


def stitched_docs(customers: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(stitched events, stall alerts) of a population over the last three days."""
    start = (now_ms() - 3 * DAY_MS) // 60_000 * 60_000
    pop = generate(
        SimConfig(customers=customers, seed=seed, start_ms=start, span_ms=3 * DAY_MS - 3_600_000),
        load_definitions(),
    )
    events, alerts = [], []
    for true_id, evs in pop.events.items():
        cid = cid_of(true_id)
        for ev in evs:
            t = parse_rfc3339_ms(ev["occurred_at"])
            doc = {k: v for k, v in ev.items() if k != "identifiers"}
            events.append(
                {
                    **doc,
                    "occurred_at_ms": t,
                    "customer_id": cid,
                    "identity_keys": [],
                    "stitched_at_ms": t,
                    "direction": ev.get("direction", "inbound"),
                    "visibility": ev.get("visibility", "onstage"),
                }
            )
        last = [e for e in evs if "journey" in e]
        if last and len(alerts) < customers // 3:
            x = last[-1]
            alerts.append(
                {
                    "schema_version": "1.0",
                    "alert_id": "a_" + hashlib.sha256(x["event_id"].encode()).hexdigest()[:32],
                    "type": "stall" if len(alerts) % 2 else "channel_switch",
                    "severity": "high",
                    "customer_id": cid,
                    "status": "open",
                    "detected_at": format_ms(now_ms()),
                    "occurred_at": x["occurred_at"],
                    "journey": dict(x["journey"]),
                    "evidence": {"event_ids": [x["event_id"]]},
                }
            )
    return events, alerts


async def fill(env: dict[str, str], customers: int = 120, seed: int = 7) -> tuple[int, int]:
    """Write the population through the map's handler; (events, alerts) written."""
    settings = JourneyMapSettings.model_validate(
        {k: v for k, v in env.items() if k.startswith(("JOURNEYS_", "REDIS_", "KAFKA_"))}
    )
    client = connect(settings.redis_url)
    try:
        _, handler = build(settings, load_definitions(), MapMetrics(), client)
        events, alerts = stitched_docs(customers, seed)
        batches = [(settings.topic_stitched_events, events), (settings.topic_gap_alerts, alerts)]
        offset = 0
        for topic, docs in batches:
            for i in range(0, len(docs), 500):
                records = []
                for doc in docs[i : i + 500]:
                    offset += 1
                    records.append(Record(topic, 0, offset, None, orjson.dumps(doc), {}))
                await handler.handle(records, None)  # type: ignore[arg-type]  # the handler produces nothing
        return len(events), len(alerts)
    finally:
        await client.aclose()


def fill_sync(env: dict[str, str], customers: int = 120, seed: int = 7) -> tuple[int, int]:
    return asyncio.run(fill(env, customers, seed))
