-- Remove the touchpoints journey_take.lua read from a merged-away customer, once journey.lua has written
-- them into the survivor's journey. Only those: a touchpoint another worker wrote there meanwhile (it
-- resolved the customer before the merge) stays, for that worker's alias check to fold. An empty journey
-- goes as a whole.
-- Called through script_calls.py DropCall.
-- KEYS[1..4] journey_keys: the customer's timeline ZSET, touchpoints HASH, summary HASH, masks HASH
-- ARGV[1..] event_ids: the event ids taken
for i = 1, #ARGV, 1000 do
  local part = {unpack(ARGV, i, math.min(i + 999, #ARGV))}
  redis.call('ZREM', KEYS[1], unpack(part))
  redis.call('HDEL', KEYS[2], unpack(part))
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4]) end
return 1
