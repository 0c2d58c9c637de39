"""``python -m services.api.rekey FILE...``: move the identity graph from the old HMAC key to the new one.

An identifier is stored only as HMAC(key, type:value), so re-keying needs the raw values once more: give
it channel events (JSON lines, e.g. an export of the channel-events topic) or lines of
``{"type": "email", "value": "..."}`` (a CRM export). For every identifier, under every key of
JOURNEYS_HMAC_PREVIOUS_SECRETS, the identifier key stitched under the old key is moved to the key
JOURNEYS_HMAC_SECRET gives (same customer, same expiry) and the customer's identifier set follows, in one
script per identifier (atomic; one hash slot, the identity graph's). Safe to run again and while the
services run: a key already moved, or re-linked meanwhile, is left alone.

Rotation (docs/security.md): set the new key in JOURNEYS_HMAC_SECRET and the old one in
JOURNEYS_HMAC_PREVIOUS_SECRETS, restart the services (lookups try both), run this over the identifiers
you hold, then drop the old key from JOURNEYS_HMAC_PREVIOUS_SECRETS.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from services.common.keys import Keys
from services.common.redis_conn import connect_sync
from services.common.settings import CommonSettings
from services.stitcher.core.identifiers import IDENTIFIER_TYPES, Denylist, id_key, is_junk, normalise

# KEYS: old identifier key, new identifier key, the customer's identifier set. ARGV: customer id, old
# id_key, new id_key. Moves only while the old key still names that customer and the new one is free.
MOVE = """#!lua
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[2], ARGV[1])
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"""


@dataclass
class Report:
    identifiers: int = 0  # usable identifiers read
    moved: int = 0
    unknown: int = 0  # under no old key (never stitched, expired, or moved already)


def identifiers_of(lines: Iterable[bytes]) -> Iterator[tuple[str, str]]:
    """(type, raw value) pairs from channel events or {"type", "value"} lines; other lines are skipped."""
    for line in lines:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(doc, dict):
            continue
        if isinstance(doc.get("identifiers"), dict):
            yield from ((t, v) for t, v in doc["identifiers"].items() if isinstance(v, str))
        elif isinstance(doc.get("type"), str) and isinstance(doc.get("value"), str):
            yield doc["type"], doc["value"]


def rekey(client: Any, keys: Keys, settings: CommonSettings, pairs: Iterable[tuple[str, str]]) -> Report:
    report, denylist = Report(), Denylist.from_settings(settings)
    new_secret, old_secrets = settings.secret_bytes(), settings.previous_secret_bytes()
    move = client.register_script(MOVE)
    seen: set[tuple[str, str]] = set()
    for id_type, raw in pairs:
        value = (
            normalise(id_type, raw, phone_region=settings.phone_region)
            if id_type in IDENTIFIER_TYPES
            else None
        )
        if value is None or is_junk(id_type, value, denylist) or (id_type, value) in seen:
            continue
        seen.add((id_type, value))
        report.identifiers += 1
        new = id_key(new_secret, id_type, value)
        for old in (id_key(s, id_type, value) for s in old_secrets):
            cid = client.get(keys.identifier(old))
            if cid is None:
                continue
            cid = cid.decode()
            done = move(
                keys=[keys.identifier(old), keys.identifier(new), keys.customer_ids(cid)],
                args=[cid, old, new],
            )
            report.moved += int(done)
            break
        else:
            report.unknown += 1
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.api.rekey",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", type=Path, help="JSON lines: channel events or {type, value}")
    args = parser.parse_args(argv)
    try:
        settings = CommonSettings()
    except ValidationError as exc:
        print(f"rekey: error: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    if not settings.previous_secret_bytes():
        print(
            "rekey: error: set JOURNEYS_HMAC_PREVIOUS_SECRETS to the key(s) being replaced", file=sys.stderr
        )
        return 2
    client = connect_sync(settings.redis_url)
    total = Report()
    try:
        for path in args.files:
            with path.open("rb") as handle:
                got = rekey(client, Keys(settings.key_prefix), settings, identifiers_of(handle))
            total.identifiers += got.identifiers
            total.moved += got.moved
            total.unknown += got.unknown
    except OSError as exc:
        print(f"rekey: error: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()
    print(
        f"rekey: {total.identifiers} identifiers read, {total.moved} moved to the new key, "
        f"{total.unknown} under no old key"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
