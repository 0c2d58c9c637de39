#!lua
-- Apply writes that share one hash slot in one call (atomic, one round trip): a customer's truth (its
-- state with its timers, open alerts and outbox) or one of the detector-wide indexes.
-- Called through services/gap_detector/script_calls.py ApplyCall, whose fields are named as below.
-- KEYS[1] slot_key: a key of that slot: every key written is in it (Redis Cluster refuses anything else)
-- ARGV[1] operations: MessagePack list of {command, key, args...}; only the writes below are accepted,
-- and these conditional ones:
--   {'EXPECT', state hash, token}  compare-and-set: unless the hash's field 'n' still holds the token
--       ('' for none) the state was loaded with, nothing at all is written (a CONFLICT error: not TRYAGAIN,
--       which a cluster client would retry by itself);
--   {'DELIF', state hash, token, key...}  delete the keys only if the hash still holds the token (a
--       merged-away customer folded into its survivor is deleted unless written since: then it is
--       folded again, idempotently, on its survivor's next load);
--   {'HDELEQ', hash, field, value, ...}  delete each field only if it still holds the value (an outbox
--       entry published, unless a newer version of the alert was saved meanwhile);
--   {'ZREMEQ', zset, score, member...}  remove each member only if its score is still that (an outbox
--       index entry re-armed by a newer save stays);
--   {'TRIM', zset, hash, most}  keep the newest ``most`` members of the zset, their fields of the hash.
local allowed = {HSET = true, HDEL = true, DEL = true, EXPIRE = true, ZADD = true, ZREM = true, HINCRBY = true}
local ops = cmsgpack.unpack(ARGV[1])
for _, op in ipairs(ops) do
  if op[1] == 'EXPECT' and (redis.call('HGET', op[2], 'n') or '') ~= op[3] then
    return redis.error_reply('CONFLICT apply.lua: state changed meanwhile: ' .. op[2])
  end
end
local done = 0
for _, op in ipairs(ops) do
  local cmd = op[1]
  if cmd == 'EXPECT' then  -- checked above
  elseif cmd == 'DELIF' then
    if (redis.call('HGET', op[2], 'n') or '') == op[3] then
      for i = 4, #op do redis.call('DEL', op[i]) end
      done = done + 1
    end
  elseif cmd == 'HDELEQ' then
    for i = 3, #op, 2 do
      if redis.call('HGET', op[2], op[i]) == op[i + 1] then redis.call('HDEL', op[2], op[i]) end
    end
  elseif cmd == 'ZREMEQ' then
    local want = tonumber(op[3])
    for i = 4, #op do
      local score = redis.call('ZSCORE', op[2], op[i])
      if score and tonumber(score) == want then redis.call('ZREM', op[2], op[i]) end
    end
  elseif cmd == 'TRIM' then
    local extra = redis.call('ZCARD', op[2]) - tonumber(op[4])
    if extra > 0 then
      local old = redis.call('ZRANGE', op[2], 0, extra - 1)
      redis.call('ZREMRANGEBYRANK', op[2], 0, extra - 1)
      for i = 1, #old, 500 do
        redis.call('HDEL', op[3], unpack(old, i, math.min(i + 499, #old)))
      end
    end
  else
    if not allowed[cmd] then return redis.error_reply('apply.lua: command not allowed: ' .. tostring(cmd)) end
    for i = 3, #op do
      if type(op[i]) == 'number' then op[i] = string.format('%d', op[i]) end
    end
    redis.call(unpack(op))
  end
end
return done
