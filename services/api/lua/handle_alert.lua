-- An agent's handling of one alert (acknowledged/resolved, by whom, when, the note), with compare-and-set:
-- the API computes the next handling from the one it read (services/api/core/handling.py) and it is
-- written only if nobody changed it meanwhile (else the API reads again and decides again).
-- KEYS[1] handling: the handling hash of the alert's customer (Keys.alert_handling, the customer's slot;
--   the only key touched)
-- ARGV[1] alert_id: the alert
-- ARGV[2] seen: the handling JSON read ('' for none)
-- ARGV[3] new: the handling JSON to write
-- ARGV[4] keep_s: seconds the hash lives at least (the journey retention)
-- Returns {1, new} when written, {0, what it holds now} when it changed meanwhile. Field '~v' counts the
-- writes: the live page's cheap "did anything change" probe.
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return {0, cur} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[1], '~v', 1)
local ttl = tonumber(ARGV[4])
-- PTTL, not TTL: the documented ACL line of the services (docs/security.md) allows that one.
if redis.call('PTTL', KEYS[1]) < ttl * 1000 then redis.call('EXPIRE', KEYS[1], ttl) end
return {1, ARGV[3]}
