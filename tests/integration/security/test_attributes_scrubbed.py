"""A real stitcher (`journeys stitcher`, real Kafka and Redis) receives events whose free-text attributes
hold an e-mail address and a phone number: neither reaches stitched-events nor any key or value in Redis,
while the other attributes travel. With JOURNEYS_ATTRIBUTES_ALLOW only the named attributes travel.
(Without the scrubber in decode, the first test finds both values on the topic.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import Infra, Topics
from tests.integration.stitcher.support import consume_all, create_topics, event, produce, stitcher

pytestmark = pytest.mark.integration
EMAIL, PHONE = "leak.me@example.org", "+44 7700 900123"
PHONE_DIGITS = "7700900123"


def redis_dump(redis_client: Any, prefix: str) -> bytes:
    out = []
    for key in redis_client.scan_iter(match=f"{prefix}:*", count=1000):
        kind = redis_client.type(key).decode()
        read = {
            "string": redis_client.get,
            "hash": redis_client.hgetall,
            "set": redis_client.smembers,
            "zset": lambda k: redis_client.zrange(k, 0, -1, withscores=True),
            "list": lambda k: redis_client.lrange(k, 0, -1),
            "stream": lambda k: redis_client.xrange(k),
        }[kind]
        out.append(key + b"=" + repr(read(key)).encode())
    return b"\n".join(out)


def send(infra: Infra, topics: Topics, prefix: str) -> list[dict[str, Any]]:
    items = [
        dict(
            event(f"attr-{prefix}-1", cookie_id=f"ck-{prefix}"),
            attributes={"note": f"please call {PHONE} or mail {EMAIL}", "plan": "gold", "amount": 42},
        ),
        dict(
            event(f"attr-{prefix}-2", cookie_id=f"ck-{prefix}"),
            attributes={"callback": int("44" + PHONE_DIGITS), "contact": EMAIL.upper()},
        ),
    ]
    produce(infra.bootstrap_servers, topics.channel_events, items)
    return [
        orjson.loads(r.value)
        for r in consume_all(infra.bootstrap_servers, topics.stitched_events, 2, timeout=90)
    ]


def test_no_email_or_phone_from_attributes_reaches_the_topic_or_redis(
    infra: Infra,
    topics: Topics,
    service_env: dict[str, str],
    key_prefix: str,
    redis_client: Any,
    tmp_path: Path,
) -> None:
    create_topics(infra.bootstrap_servers, topics)
    with stitcher(service_env, tmp_path / "stitcher.log"):
        out = send(infra, topics, key_prefix)
    attributes = {r["event_id"]: r["attributes"] for r in out}
    assert attributes[f"attr-{key_prefix}-1"] == {
        "note": "please call [redacted] or mail [redacted]",
        "plan": "gold",
        "amount": 42,
    }
    assert attributes[f"attr-{key_prefix}-2"] == {"callback": "[redacted]", "contact": "[redacted]"}
    everything = orjson.dumps(out) + redis_dump(redis_client, key_prefix)
    for raw in (EMAIL.encode(), EMAIL.upper().encode(), PHONE.encode(), PHONE_DIGITS.encode()):
        assert raw not in everything


def test_an_allow_list_forwards_only_the_named_attributes(
    infra: Infra, topics: Topics, service_env: dict[str, str], key_prefix: str, tmp_path: Path
) -> None:
    create_topics(infra.bootstrap_servers, topics)
    with stitcher(service_env, tmp_path / "stitcher.log", JOURNEYS_ATTRIBUTES_ALLOW="plan,amount"):
        out = send(infra, topics, key_prefix)
    assert sorted(map(repr, (r.get("attributes") for r in out))) == sorted(
        [repr({"plan": "gold", "amount": 42}), repr({})]
    )
