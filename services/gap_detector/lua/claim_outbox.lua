#!lua
-- Claim gap alerts left in the outboxes (saved with their customer's state, not acknowledged by Kafka:
-- the saving worker failed or died before publishing). Each index entry is leased by pushing its score
-- ahead, so one sweep publishes it; the sweep reads the alert from its outbox and removes both once the
-- broker acknowledged it (store.published).
-- KEYS[1] outbox index ZSET (member '<cid>|<alert_id>', score wall ms it becomes claimable).
-- ARGV[1] wall clock now (ms), ARGV[2] lease (ms), ARGV[3] most entries to take.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, doc in ipairs(due) do redis.call('ZADD', KEYS[1], until_ms, doc) end
return due
