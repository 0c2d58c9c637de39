#!lua
-- HTTP API lookups, step 2 of 2: one customer's journey, read atomically from its own hash slot
-- ({<p>:c:<cid>}; the customer was resolved by resolve.lua, in the identity graph's slot).
-- Called through services/api/script_calls.py ReadJourneyCall, whose fields are named as below.
-- KEYS[1] timeline: ZSET of event ids by time
-- KEYS[2] touchpoints: HASH event id -> touchpoint JSON
-- KEYS[3] summary: HASH
-- KEYS[4] masked: HASH of masked identifiers
-- KEYS[5] open_alerts: HASH
-- ARGV[1] max_touchpoints: most recent touchpoints to return
-- Returns {timeline, touchpoints, summary, masked, open_alerts}: timeline the most recent event ids
-- (oldest first), touchpoints their JSON in the same order (false for a missing one), the hashes as flat
-- field/value lists, as HGETALL gives them.

-- Only the touchpoints returned are read (HMGET in chunks: unpack has a stack limit).
local ids = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
local touchpoints = {}
for i = 1, #ids, 1000 do
  local got = redis.call('HMGET', KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
  for _, v in ipairs(got) do touchpoints[#touchpoints + 1] = v end
end

return {
  ids,
  touchpoints,
  redis.call('HGETALL', KEYS[3]),
  redis.call('HGETALL', KEYS[4]),
  redis.call('HGETALL', KEYS[5]),
}
