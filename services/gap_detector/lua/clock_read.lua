#!lua
-- The detector's tick reads the evidence clock (core/clock.py) in one call, storing its own first.
-- Called through services/gap_detector/script_calls.py ClockReadCall.
-- KEYS[1] clock_seen: clock:seen HASH '<topic>:<partition>' -> ms
-- KEYS[2] clock_inputs: clock:inputs HASH (the stitchers')
-- KEYS[3] watermark: STRING
-- ARGV[1..] own_seen: pairs of '<topic>:<partition>', seen-through ms of this worker's partitions; a
--       value is stored only when it is newer (a partition's previous owner may have proven less, never
--       more)
-- Returns {seen (flat HGETALL), inputs (flat HGETALL), watermark or nil}.
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > cur then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('GET', KEYS[3])}
