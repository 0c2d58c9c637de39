#!lua
-- Claim due stall timers atomically, so with several workers each timer is taken by exactly one.
-- Called through services/gap_detector/script_calls.py ClaimTimersCall.
-- KEYS[1] timers: ZSET (member '<cid>|<journey>', score deadline)
-- KEYS[2] inflight: ZSET (score lease end)
-- ARGV[1] watermark_ms: the watermark
-- ARGV[2] now_ms: wall clock now
-- ARGV[3] lease_ms: how long a claimed timer is leased
-- ARGV[4] limit: most timers to take
-- A lease that ran out (its worker died before finishing) puts the timer back as due at once; ZADD NX
-- keeps a newer deadline armed meanwhile.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, ARGV[4])
for _, m in ipairs(expired) do
  redis.call('ZREM', KEYS[2], m)
  redis.call('ZADD', KEYS[1], 'NX', 0, m)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[4])
local lease = tonumber(ARGV[2]) + tonumber(ARGV[3])
for i = 1, #due, 2 do
  redis.call('ZREM', KEYS[1], due[i])
  redis.call('ZADD', KEYS[2], lease, due[i])
end
return due
