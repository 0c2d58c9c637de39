#!lua
-- Claim gap alerts left in the outboxes (saved with their customer's state, not acknowledged by Kafka:
-- the saving worker failed or died before publishing). Each index entry is leased by pushing its score
-- ahead, so one sweep publishes it; the sweep reads the alert from its outbox and removes both once the
-- broker acknowledged it (store.published).
-- Called through services/gap_detector/script_calls.py ClaimOutboxCall.
-- KEYS[1] outbox_index: ZSET (member '<cid>|<alert_id>', score wall ms it becomes claimable)
-- ARGV[1] now_ms: wall clock now
-- ARGV[2] lease_ms: how long a claimed entry is leased
-- ARGV[3] limit: most entries to take
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, doc in ipairs(due) do redis.call('ZADD', KEYS[1], until_ms, doc) end
return due
