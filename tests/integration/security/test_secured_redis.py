"""The stitcher, the gap detector and the API run against a TLS-only redis-server as an ACL user limited
to the line docs/security.md documents (read from that page, so the two cannot drift): events are
stitched, an alert raised, a journey looked up and erased, and Redis's ACL LOG records no denial. The
same user cannot run administrative commands or touch keys outside its prefix, and a client that does not
trust the server's CA cannot connect."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from services.common.redis_conn import connect_sync
from services.common.timeutil import format_ms, now_ms
from tests.conftest import Infra, Topics
from tests.helpers import free_port, poll
from tests.integration.ops.services import http_get, service
from tests.integration.security.secure_redis import (
    ADMIN_PASSWORD,
    SERVICE_PASSWORD,
    SecureRedis,
    secure_redis,
)
from tests.integration.stitcher.support import create_topics, produce

pytestmark = pytest.mark.integration
SECURITY_DOC = Path(__file__).resolve().parents[3] / "docs" / "security.md"
TOKEN = "redis-acl-test-token"


def documented_acl(prefix: str) -> str:
    """The rules of the documented ACL line (after the password), for this test's key prefix."""
    block = re.search(r"<!-- acl -->\n```text\n(.+?)\n```\n<!-- /acl -->", SECURITY_DOC.read_text(), re.S)
    assert block is not None, "docs/security.md lost its ACL block"
    line = block.group(1).strip()
    head = "user journeys on >PASSWORD "
    assert line.startswith(head) and " ~jr:* " in line, line
    return line.removeprefix(head).replace(" ~jr:* ", f" ~{prefix}:* ")


@pytest.fixture
def tls_redis(tmp_path: Path, key_prefix: str) -> Iterator[SecureRedis]:
    with secure_redis(tmp_path / "redis", documented_acl(key_prefix)) as found:
        yield found


def admin(r: SecureRedis) -> Any:
    return redis.Redis.from_url(r.url("admin", ADMIN_PASSWORD), ssl_ca_certs=str(r.certs.ca))


def traffic() -> list[dict[str, Any]]:
    t = now_ms() - 20 * 60_000

    def ev(eid: str, minute: int, channel: str, ids: dict[str, str], **extra: Any) -> dict[str, Any]:
        return {
            "event_id": eid,
            "occurred_at": format_ms(t + minute * 60_000),
            "channel": channel,
            "touchpoint": extra.pop("touchpoint", "page"),
            "identifiers": ids,
            **extra,
        }

    pay = {"journey": {"type": "purchase", "stage": "payment"}}
    return [
        ev("r-0", 0, "web", {"cookie_id": "ck_r_0"}),
        ev(
            "r-1",
            6,
            "web",
            {"email": "tls.one@example.com"},
            intent="payment_problem",
            outcome="failure",
            **pay,
        ),
        ev("r-2", 8, "web", {"email": "tls.one@example.com", "phone": "+44 7700 900222"}, **pay),
        ev(
            "r-3",
            16,
            "phone",
            {"email": "tls.one@example.com"},
            touchpoint="agent_call",
            intent="payment_problem",
            **pay,
        ),
        ev("r-4", 40, "web", {"cookie_id": "ck_r_4"}),
    ]


def test_services_run_on_tls_redis_as_the_documented_acl_user(
    tls_redis: SecureRedis,
    infra: Infra,
    topics: Topics,
    service_env: dict[str, str],
    key_prefix: str,
    tmp_path: Path,
) -> None:
    create_topics(infra.bootstrap_servers, topics)
    ports = {name: free_port() for name in ("stitcher", "detector", "api")}
    env = {
        **service_env,
        **tls_redis.env(),
        "JOURNEYS_API_TOKEN": TOKEN,
        "JOURNEYS_TIMER_CLOCK": "event",
        "JOURNEYS_STITCHER_METRICS_PORT": str(ports["stitcher"]),
        "JOURNEYS_DETECTOR_METRICS_PORT": str(ports["detector"]),
        "JOURNEYS_API_PORT": str(ports["api"]),
        "JOURNEYS_STITCHER_GROUP": f"s-{key_prefix}",
        "JOURNEYS_DETECTOR_GROUP": f"d-{key_prefix}",
        "JOURNEYS_INSTANCE_ID": "none",
    }
    api, auth = f"http://127.0.0.1:{ports['api']}", {"Authorization": f"Bearer {TOKEN}"}
    lookup = f"{api}/api/v1/journeys/lookup?email=tls.one%40example.com"
    with ExitStack() as stack:
        for name, url in (
            ("stitcher", f"http://127.0.0.1:{ports['stitcher']}/metrics"),
            ("detector", f"http://127.0.0.1:{ports['detector']}/metrics"),
            ("api", f"{api}/healthz"),
        ):
            stack.enter_context(service(name, env, tmp_path / f"{name}.log", url))
        produce(infra.bootstrap_servers, topics.channel_events, traffic(), partition=0)
        poll(lambda: http_get(lookup, auth)[0] == 200, timeout=90, what="the journey, stitched over TLS")
        poll(
            lambda: b"channel_switch" in http_get(f"{api}/api/v1/alerts", auth)[1],
            timeout=90,
            what="the detector's channel_switch alert",
        )
        journey = orjson.loads(http_get(lookup, auth)[1])
        assert {"r-1", "r-2", "r-3"} <= {t["event_id"] for t in journey["touchpoints"]}
        assert http_get(f"{api}/api/v1/customers/{journey['customer_id']}", auth, method="DELETE")[0] == 200
        assert http_get(lookup, auth)[0] == 404
    client = admin(tls_redis)
    denied = client.acl_log()
    client.close()
    assert denied == [], f"the documented ACL line lacks what the services ran: {denied}"
    logs = "".join((tmp_path / f"{n}.log").read_text() for n in ("stitcher", "detector", "api"))
    assert "NOPERM" not in logs


def test_the_acl_user_cannot_administer_or_leave_its_prefix(tls_redis: SecureRedis, key_prefix: str) -> None:
    client = connect_sync(tls_redis.url(), ssl_ca_certs=str(tls_redis.certs.ca))
    try:
        assert client.set(f"{key_prefix}:probe", "1")
        for command in (
            ("KEYS", "*"),
            ("FLUSHALL",),
            ("CONFIG", "GET", "*"),
            ("SCRIPT", "FLUSH"),
            ("GET", "other:key"),
            ("SUBSCRIBE", "x"),
            ("ACL", "LIST"),
            ("INFO",),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
    finally:
        client.close()


def test_a_client_that_does_not_trust_the_ca_cannot_connect(
    tls_redis: SecureRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_SSL_CA_FILE", raising=False)
    client = connect_sync(tls_redis.url(), socket_timeout=5)
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        client.ping()
    plain_url = f"redis://journeys:{SERVICE_PASSWORD}@127.0.0.1:{tls_redis.port}/0"
    plain = connect_sync(plain_url, socket_timeout=5)
    with pytest.raises(redis.exceptions.ConnectionError):
        plain.ping()
