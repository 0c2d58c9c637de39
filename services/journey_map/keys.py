"""Redis key names of the journey map, from the deployment's key prefix.

Customers are spread over ``shards`` groups by a hash of their id; every key of one group carries the
hash tag ``{<prefix>:map:<n>}``, so one script call writes a group's customer states and the map
counters their changes move, atomically, on one Redis Cluster slot. The API sums the groups on read.

Per group (stem ``<prefix>:{<prefix>:map:<n>}:``):
- ``cust:<cid>`` HASH ``s`` the customer's map state (JSON), ``g`` its generation (compare-and-set);
- ``m:<minute ms>`` / ``h:<hour ms>`` HASH ``journey|stage|persona|channel|metric`` -> count (event time);
- ``idx:m`` / ``idx:h`` ZSET of the minutes / hours written (score = member), so a read finds its buckets;
- ``now`` HASH ``journey|stage|persona|channel`` -> customers in that stage now;
- ``pain:<journey>|<stage>|<type>`` ZSET ``<cid>|<alert id>|<persona>`` by occurred ms: who is behind a
  pain point.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MapKeys:
    prefix: str = "jr"
    shards: int = 4

    def shard_of(self, cid: str) -> int:
        return zlib.crc32(cid.encode()) % self.shards

    def stem(self, shard: int) -> str:
        return f"{self.prefix}:{{{self.prefix}:map:{shard}}}:"

    def customer(self, cid: str) -> str:
        return f"{self.stem(self.shard_of(cid))}cust:{cid}"

    def now(self, shard: int) -> str:
        return f"{self.stem(shard)}now"

    def minute(self, shard: int, minute_ms: int) -> str:
        return f"{self.stem(shard)}m:{minute_ms}"

    def hour(self, shard: int, hour_ms: int) -> str:
        return f"{self.stem(shard)}h:{hour_ms}"

    def index(self, shard: int, kind: str) -> str:
        return f"{self.stem(shard)}idx:{kind}"

    def pain(self, shard: int, journey: str, stage: str, kind: str) -> str:
        return f"{self.stem(shard)}pain:{journey}|{stage}|{kind}"
