-- Claim gap alerts left in the outbox (saved with their batch, not acknowledged by Kafka: the saving
-- worker failed or died before publishing). Each is leased by pushing its score ahead, so one sweep
-- publishes it; the sweep removes it once the broker acknowledged it (store.published).
-- KEYS[1] outbox ZSET (member alert JSON, score wall ms it becomes claimable).
-- ARGV[1] wall clock now (ms), ARGV[2] lease (ms), ARGV[3] most entries to take.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, doc in ipairs(due) do redis.call('ZADD', KEYS[1], until_ms, doc) end
return due
