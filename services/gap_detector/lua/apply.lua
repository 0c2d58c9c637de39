-- Apply a batch's writes in one call (atomic, one round trip): the detector's save.
-- ARGV[1] MessagePack list of operations [command, key, args...]; only the writes below are accepted.
-- ARGV[2] recent-alerts ZSET, ARGV[3] alerts-by-id HASH, ARGV[4] most recent alerts kept.
-- ARGV[5] watermark STRING, ARGV[6] per-partition HASH, ARGV[7] clock JSON for advance_watermark
-- (watermark.lua) or '': the watermark moves only after the batch's writes.
local allowed = {HSET = true, HDEL = true, DEL = true, EXPIRE = true, ZADD = true, ZREM = true, HINCRBY = true}
local ops = cmsgpack.unpack(ARGV[1])
for _, op in ipairs(ops) do
  if not allowed[op[1]] then return redis.error_reply('apply.lua: command not allowed: ' .. tostring(op[1])) end
  for i = 3, #op do
    if type(op[i]) == 'number' then op[i] = string.format('%d', op[i]) end
  end
  redis.call(unpack(op))
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
if ARGV[7] ~= '' then
  local arg = cjson.decode(ARGV[7])
  arg.write = true
  advance_watermark(ARGV[5], ARGV[6], arg)
end
return #ops
