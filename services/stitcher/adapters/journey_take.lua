-- Read a merged-away customer's journey so that it can be folded into its survivor's (journey.lua), then
-- removed (journey_drop.lua): three steps, because the two journeys live in different hash slots. Each
-- step is safe to repeat after a crash: journey.lua skips a touchpoint its survivor holds already, and the
-- drop removes only what was taken. Read-only.
-- Called through script_calls.py TakeCall.
-- KEYS[1..4] journey_keys: the customer's timeline ZSET, touchpoints HASH, summary HASH, masks HASH
-- Returns {timeline as event_id, score, ... (oldest first), their touchpoint JSON in the same order (false
-- for a missing one), masks as HGETALL gives them, the summary's truncated flag or false}.
local ids = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local tps = {}
for i = 1, #ids, 2000 do
  local names = {}
  for j = i, math.min(i + 1999, #ids), 2 do names[#names + 1] = ids[j] end
  local got = redis.call('HMGET', KEYS[2], unpack(names))
  for _, v in ipairs(got) do tps[#tps + 1] = v end
end
return {ids, tps, redis.call('HGETALL', KEYS[4]), redis.call('HGET', KEYS[3], 'truncated')}
