-- Apply a batch's writes in one call (atomic, one round trip): the detector's save.
-- ARGV[1] MessagePack list of operations [command, key, args...]; only the writes below are accepted.
-- ARGV[2] recent-alerts ZSET, ARGV[3] alerts-by-id HASH, ARGV[4] most recent alerts kept.
-- An operation {'EXPECT', state hash, token} writes nothing: unless the hash's field 'n' still holds the
-- token ('' for none) the batch was loaded with, nothing at all is written (compare-and-set).
local allowed = {HSET = true, HDEL = true, DEL = true, EXPIRE = true, ZADD = true, ZREM = true, HINCRBY = true}
local ops = cmsgpack.unpack(ARGV[1])
for _, op in ipairs(ops) do
  if op[1] == 'EXPECT' and (redis.call('HGET', op[2], 'n') or '') ~= op[3] then
    return redis.error_reply('TRYAGAIN apply.lua: state changed meanwhile: ' .. op[2])
  end
end
for _, op in ipairs(ops) do
  if op[1] ~= 'EXPECT' then
    if not allowed[op[1]] then return redis.error_reply('apply.lua: command not allowed: ' .. tostring(op[1])) end
    for i = 3, #op do
      if type(op[i]) == 'number' then op[i] = string.format('%d', op[i]) end
    end
    redis.call(unpack(op))
  end
end
-- Keep the recent-alerts index bounded: drop the oldest beyond the limit from the ZSET and the HASH.
local extra = redis.call('ZCARD', ARGV[2]) - tonumber(ARGV[4])
if extra > 0 then
  local old = redis.call('ZRANGE', ARGV[2], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', ARGV[2], 0, extra - 1)
  for i = 1, #old, 500 do
    redis.call('HDEL', ARGV[3], unpack(old, i, math.min(i + 499, #old)))
  end
end
return #ops
