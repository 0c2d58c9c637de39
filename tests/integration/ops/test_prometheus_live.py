"""The ops view end to end: the four services run for real, events flow through Kafka, a real
Prometheus scrapes them, and every PromQL expression of the dashboard and of the rules parses and
returns data (an alert rule's expression may be empty until its condition holds: then its metric
names must at least exist in the scraped series). Each /metrics also passes `promtool check metrics`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from services.common.contracts import JOURNEY, errors
from services.common.keys import Keys
from services.common.timeutil import format_ms, now_ms
from services.stack.kafka_broker import create_topics
from tests.conftest import Infra, Topics
from tests.helpers import free_port, poll
from tests.integration.ops.promql import RULES_DIR, dashboard_exprs, metric_names, rule_exprs
from tests.integration.ops.services import http_get, prometheus, query, scraped_names, service

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path("/usr/bin/prometheus").exists(), reason="needs /usr/bin/prometheus"),
]
TOKEN = "ops-token"


def events() -> tuple[list[bytes], list[bytes]]:
    """Two waves. The first sets the detector's watermark; the second has a merge, a conflict, a
    duplicate, a bad record and a failed web payment followed by a call (channel_switch), and moves the
    event-time watermark past its journey-stage minutes so their drop-off cells get judged."""
    t = now_ms() - 20 * 60_000

    def ev(eid: str, minute: int, channel: str, ids: dict[str, str], **extra: Any) -> bytes:
        return orjson.dumps(
            {
                "event_id": eid,
                "occurred_at": format_ms(t + minute * 60_000),
                "channel": channel,
                "touchpoint": extra.pop("touchpoint", "page"),
                "identifiers": ids,
                **extra,
            }
        )

    pay = {"journey": {"type": "purchase", "stage": "payment"}}
    first = ev(
        "ops-1",
        6,
        "web",
        {"email": "ops.one@example.com"},
        intent="payment_problem",
        outcome="failure",
        **pay,
    )
    return [ev("ops-0", 0, "web", {"cookie_id": "ck_ops_0"})], [
        first,
        first,  # duplicate
        ev("ops-2", 7, "mobile_app", {"phone": "+44 7700 900111"}, **pay, outcome="abandoned"),
        ev("ops-3", 8, "web", {"email": "ops.one@example.com", "phone": "+44 7700 900111"}, **pay),  # merge
        ev("ops-4", 9, "web", {"customer_id": "crm-1", "email": "ops.one@example.com"}),
        ev("ops-5", 10, "web", {"customer_id": "crm-2", "email": "ops.one@example.com"}),  # conflict
        ev(
            "ops-6",
            16,
            "phone",
            {"email": "ops.one@example.com"},
            touchpoint="agent_call",
            intent="payment_problem",
            **pay,
        ),  # channel switch
        ev("ops-7", 20, "web", {"cookie_id": "ck_ops_7"}, journey={"type": "purchase", "stage": "browse"}),
        b"{not json",  # dead letter
    ]


@pytest.fixture
def running(
    infra: Infra,
    topics: Topics,
    service_env: dict[str, str],
    tmp_path: Path,
) -> Iterator[dict[str, str]]:
    create_topics(
        infra.bootstrap_servers,
        [
            topics.channel_events,
            topics.dlq,
            topics.stitched_events,
            topics.identity_merges,
            topics.gap_alerts,
        ],
        2,
    )
    ports = {"stitcher": free_port(), "gap_detector": free_port(), "map": free_port(), "api": free_port()}
    prefix = service_env["JOURNEYS_KEY_PREFIX"]
    env = {
        **service_env,
        "JOURNEYS_STITCHER_METRICS_PORT": str(ports["stitcher"]),
        "JOURNEYS_DETECTOR_METRICS_PORT": str(ports["gap_detector"]),
        "JOURNEYS_MAP_METRICS_PORT": str(ports["map"]),
        "JOURNEYS_API_PORT": str(ports["api"]),
        "JOURNEYS_API_TOKEN": TOKEN,
        "JOURNEYS_STITCHER_GROUP": f"s-{prefix}",
        "JOURNEYS_DETECTOR_GROUP": f"d-{prefix}",
        "JOURNEYS_MAP_GROUP": f"m-{prefix}",
        "JOURNEYS_TIMER_CLOCK": "event",
        "JOURNEYS_TOPIC_PARTITIONS": "2",
    }
    urls = {f"{job}_metrics": f"http://127.0.0.1:{port}/metrics" for job, port in ports.items()}
    with ExitStack() as stack:
        for job, command in (
            ("stitcher", "stitcher"),
            ("gap_detector", "detector"),
            ("map", "map"),
            ("api", "api"),
        ):
            stack.enter_context(service(command, env, tmp_path / f"{job}.log", urls[f"{job}_metrics"]))
        prom = stack.enter_context(
            prometheus(
                tmp_path, {j: f"127.0.0.1:{p}" for j, p in ports.items()}, sorted(RULES_DIR.glob("*.yml"))
            )
        )
        yield {"prometheus": prom, "api": f"http://127.0.0.1:{ports['api']}", **urls}


def push_traffic(infra: Infra, topics: Topics, api: str, redis_client: Any, prefix: str) -> None:
    producer = KafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    first_wave, second_wave = events()
    for wave in (first_wave, second_wave):
        for value in wave:
            producer.send(topics.channel_events, value, partition=0)
        producer.flush()
        if wave is first_wave:  # drop-off minutes are judged from the detector's first watermark on
            poll(
                lambda: redis_client.exists(Keys(prefix).dropoff_judged),
                timeout=60,
                what="the detector to judge its first minute",
            )
    producer.close()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    lookup = f"{api}/api/v1/journeys/lookup?email=ops.one%40example.com"
    poll(
        lambda: http_get(lookup, auth)[0] == 200,
        timeout=60,
        what="the stitched journey to be readable through the API",
    )
    poll(
        lambda: b"channel_switch" in http_get(f"{api}/api/v1/alerts", auth)[1],
        timeout=60,
        what="the detector's channel_switch alert",
    )
    _, body = http_get(f"{api}/api/v1/journeys/lookup?phone=%2B447700900111", auth)
    journey = orjson.loads(body)  # what the real stitcher and detector wrote, read back by the API
    assert list(errors(JOURNEY, journey)) == []
    assert {"ops-1", "ops-2", "ops-3", "ops-6"} <= {t["event_id"] for t in journey["touchpoints"]}
    assert journey["identifiers"]["phone"] == ["•••• 0111"]
    assert "channel_switch" in {a["type"] for a in journey["open_alerts"]}
    cid = journey["customer_id"]
    assert http_get(f"{api}/api/v1/journeys/lookup?cookie_id=ck_ops_7", auth)[0] == 200
    assert http_get(f"{api}/api/v1/journeys/lookup?phone=garbage", auth)[0] == 400
    assert http_get(f"{api}/api/v1/customers/{cid}", auth, method="DELETE")[0] == 200


def test_every_dashboard_and_rule_expression_parses_and_has_data(
    infra: Infra, topics: Topics, running: dict[str, str], redis_client: Any, key_prefix: str
) -> None:
    push_traffic(infra, topics, running["api"], redis_client, key_prefix)
    prom = running["prometheus"]

    def dashboard_gaps() -> list[str]:
        gaps = []
        for title, expr in dashboard_exprs():
            answer = query(prom, expr)
            assert answer["status"] == "success", (title, expr, answer.get("error"))
            if not answer["data"]["result"]:
                gaps.append(f"{title}: {expr}")
        return gaps

    last: list[str] = []

    def all_have_data() -> bool:
        last[:] = dashboard_gaps()
        return not last

    try:
        poll(all_have_data, timeout=90, interval=1.0, what="every dashboard expression to return data")
    except AssertionError:
        raise AssertionError("dashboard expressions without data:\n" + "\n".join(last)) from None

    names = scraped_names(prom)
    for alert, expr in rule_exprs():
        answer = query(prom, expr)
        assert answer["status"] == "success", (alert, answer.get("error"))
        assert metric_names(expr) <= names, (alert, metric_names(expr) - names)
    _, body = http_get(f"{prom}/api/v1/rules")
    health = {r["name"]: r["health"] for g in orjson.loads(body)["data"]["groups"] for r in g["rules"]}
    assert set(health.values()) == {"ok"}, health


@pytest.mark.skipif(not shutil.which("promtool"), reason="needs promtool")
def test_every_service_metrics_output_passes_promtool(
    infra: Infra, topics: Topics, running: dict[str, str], redis_client: Any, key_prefix: str
) -> None:
    push_traffic(infra, topics, running["api"], redis_client, key_prefix)
    for job in ("stitcher", "gap_detector", "map", "api"):
        status, body = http_get(running[f"{job}_metrics"])
        assert status == 200
        check = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=60)
        assert check.returncode == 0, (job, check.stdout.decode() + check.stderr.decode())
        # Identifiers could only leak through names and label values; sample values are numbers, and
        # a float like 0.6577007 would falsely "contain" the phone digits 7700.
        words = [
            word
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
            for word in (sample.name, *sample.labels.values())
        ]
        for pii in ("example.com", "7700", "ops.one", "ck_ops"):
            assert not [w for w in words if pii in w], (job, pii)
