"""Evidence, the split-block check on the merge path, split and undo run as the documented ACL user
(docs/security.md, TLS-only redis-server): every command the scripts call is on that line, and ACL LOG
stays empty."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.keys import Keys
from services.common.redis_conn import connect
from services.stitcher.adapters.redis_store import RedisStitchStore
from services.stitcher.adapters.split_store import SplitStore
from services.stitcher.settings import parse_limits
from tests.integration.security.secure_redis import SecureRedis, secure_redis
from tests.integration.security.test_secured_redis import admin, documented_acl
from tests.integration.stitcher.test_lua_matches_model import RETENTION_MS, prepared
from tests.unit.stitcher.events import NOW_MS
from tests.unit.stitcher.split_cases import event, pool

pytestmark = pytest.mark.integration


@pytest.fixture
def tls_redis(tmp_path: Path, key_prefix: str) -> Iterator[SecureRedis]:
    with secure_redis(tmp_path / "redis", documented_acl(key_prefix)) as found:
        yield found


def test_evidence_blocks_split_and_undo_need_only_the_documented_commands(
    tls_redis: SecureRedis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in tls_redis.env().items():
        monkeypatch.setenv(name, value)
    a, b = pool("a"), pool("b")
    first = prepared(
        [
            event("a0", {"email": a["email"]}, 0, "web", None),
            event("b0", {"email": b["email"], "cookie_id": b["cookie_id"]}, 1, "web", None),
            event("x0", {"email": a["email"], "cookie_id": b["cookie_id"]}, 2, "web", None),
        ]
    )
    again = prepared([event("x1", {"email": a["email"], "cookie_id": b["cookie_id"]}, 3, "web", None)])
    keys, limits = Keys(key_prefix), parse_limits("")

    async def go() -> None:
        client = connect(os.environ["REDIS_URL"])
        try:
            store = RedisStitchStore(client, keys, limits, 100, RETENTION_MS)
            (*_, last) = await store.stitch(first, NOW_MS)
            cid = last.resolution.customer_id
            splits = SplitStore(client, keys, 100, RETENTION_MS)
            rec = await splits.split(cid, separate={i.key for i in first[1].idents}, by="t", now_ms=NOW_MS)
            (refused,) = await store.stitch(again, NOW_MS)
            assert [o.limit for o in refused.resolution.outcomes] == ["split"]
            assert (await splits.undo(rec["split_id"], by="t", now_ms=NOW_MS))["state"] == "undone"
        finally:
            await client.aclose()

    asyncio.run(go())
    log: Any = admin(tls_redis).acl_log()
    assert log == []
