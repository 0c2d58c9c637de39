-- The kept customer's journey after a split moved some of its touchpoints to the new customer
-- (adapters/split_store.py; journey.lua wrote them there first): those touchpoints and masks removed and
-- the summary replaced by the one core/journey.py rebuilt from the rest, if and only if the timeline is
-- still the one the plan was made on (a worker that wrote meanwhile makes the caller read and plan again).
-- Safe to repeat: a second run finds the timeline changed (planned again: nothing left to move).
-- KEYS[1..4] journey_keys: the customer's timeline ZSET, touchpoints HASH, summary HASH, masks HASH
-- ARGV[1] timeline_digest: SHA-1 of the timeline as read (event_id ' ' score, joined by ',')
-- ARGV[2] work: MessagePack map {gone = [event ids], masks = [id keys], summary = [field, value, ...]}
-- Returns 1 (rebuilt) or 0 (the timeline changed).
local call = redis.call
local flat = call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local parts = {}
for i = 1, #flat, 2 do parts[#parts + 1] = flat[i] .. ' ' .. flat[i + 1] end
if redis.sha1hex(table.concat(parts, ',')) ~= ARGV[1] then return 0 end
local w = cmsgpack.unpack(ARGV[2])
for i = 1, #w.gone, 1000 do
  local part = {unpack(w.gone, i, math.min(i + 999, #w.gone))}
  call('ZREM', KEYS[1], unpack(part))
  call('HDEL', KEYS[2], unpack(part))
end
if #w.masks > 0 then call('HDEL', KEYS[4], unpack(w.masks)) end
if call('ZCARD', KEYS[1]) == 0 then
  call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
  return 1
end
call('DEL', KEYS[3])
if #w.summary > 0 then call('HSET', KEYS[3], unpack(w.summary)) end
local ttl = call('PTTL', KEYS[1])
if ttl > 0 then call('PEXPIRE', KEYS[3], ttl) end
return 1
