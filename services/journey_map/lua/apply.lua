-- Write one group's (shard's) changed customer states and the map deltas their changes make, atomically,
-- compare-and-set on each state's generation (journey map worker, services/journey_map/store.py).
-- Every key is in the hash slot of KEYS[1] (the group's 'now' hash): names are built from the group's stem.
-- Called through services/journey_map/script_calls.py ApplyCall, whose fields are named as below.
-- KEYS[1] now_key: <stem>now
-- ARGV[1] stem: '<prefix>:{<prefix>:map:<n>}:'
-- ARGV[2] minute_ttl_ms: TTL of a minute bucket
-- ARGV[3] hour_ttl_ms: TTL of an hour bucket
-- ARGV[4] state_ttl_ms: TTL of a customer's state
-- ARGV[5] pain_members: most members per pain point
-- ARGV[6] minutes_kept: most minutes kept in the minute index
-- ARGV[7] hours_kept: most hours kept in the hour index
-- ARGV[8] payload: JSON {"c": [[cid, expected generation ('' when none), state], ...],
--               "m": [[minute, field, n], ...], "h": [[hour, field, n], ...], "n": [[field, n], ...],
--               "rm": [[pain key suffix, member], ...], "add": [[pain key suffix, member, score], ...]}
--   (a state '' deletes the customer's key: an erasure)
--   (numbers travel as strings: Lua's numbers are doubles and would print 1e+12)
-- Returns {1} when written, {0, cid} when a customer's state changed since it was read (plan again).
local stem = ARGV[1]
local d = cjson.decode(ARGV[8])

for _, c in ipairs(d.c) do
  local g = redis.call('HGET', stem .. 'cust:' .. c[1], 'g') or ''
  if g ~= c[2] then return {0, c[1]} end
end
for _, c in ipairs(d.c) do
  local key = stem .. 'cust:' .. c[1]
  local g = tonumber(c[2]) or 0
  if c[3] == '' then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 's', c[3], 'g', tostring(g + 1))
    redis.call('PEXPIRE', key, ARGV[4])
  end
end

local function bump(key, field, n)
  if redis.call('HINCRBY', key, field, n) == 0 then redis.call('HDEL', key, field) end
end

local function buckets(rows, kind, ttl, keep)
  local touched = {}
  for _, r in ipairs(rows) do
    local key = stem .. kind .. ':' .. r[1]
    bump(key, r[2], r[3])
    touched[r[1]] = key
  end
  local index = stem .. 'idx:' .. kind
  for bucket, key in pairs(touched) do
    redis.call('PEXPIRE', key, ttl)
    redis.call('ZADD', index, bucket, bucket)
  end
  if next(touched) ~= nil then
    redis.call('ZREMRANGEBYRANK', index, 0, -(tonumber(keep) + 1))
    redis.call('PEXPIRE', index, ttl)
  end
end

buckets(d.m, 'm', ARGV[2], ARGV[6])
buckets(d.h, 'h', ARGV[3], ARGV[7])
for _, r in ipairs(d.n) do bump(KEYS[1], r[1], r[2]) end
if #d.n > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end

local pains = {}
for _, r in ipairs(d.rm) do
  local key = stem .. 'pain:' .. r[1]
  redis.call('ZREM', key, r[2])
  pains[key] = true
end
for _, r in ipairs(d.add) do
  local key = stem .. 'pain:' .. r[1]
  redis.call('ZADD', key, r[3], r[2])
  pains[key] = true
end
for key in pairs(pains) do
  redis.call('ZREMRANGEBYRANK', key, 0, -(tonumber(ARGV[5]) + 1))
  redis.call('PEXPIRE', key, ARGV[4])
end
return {1}
