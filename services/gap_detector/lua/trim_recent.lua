-- Keep the recent-alerts index bounded: drop the oldest beyond ARGV[1] from both the ZSET and the HASH.
-- KEYS[1] recent ZSET (alert_id by detected ms), KEYS[2] alerts_by_id HASH.
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if extra <= 0 then return 0 end
local old = redis.call('ZRANGE', KEYS[1], 0, extra - 1)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
redis.call('HDEL', KEYS[2], unpack(old))
return extra
