#!lua
-- Claim the drop-off cells ready to judge (exactly one worker gets each): cell-minutes whose minute
-- ended at or before the watermark. Cells are queued by every write that touches them (events, stalls),
-- so nothing is skipped however far the watermark jumps, and a late write queues its cell again.
-- Called through services/gap_detector/script_calls.py ClaimMinutesCall.
-- KEYS[1] pending: ZSET (member '<journey>|<stage>|<channel>|<minute ms>', score minute)
-- KEYS[2] judged: the last judgeable minute STRING (kept for observers)
-- ARGV[1] newest_minute: newest judgeable minute (ms)
-- ARGV[2] limit: most cells to take
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
local last = redis.call('GET', KEYS[2])
if not last or tonumber(ARGV[1]) > tonumber(last) then redis.call('SET', KEYS[2], ARGV[1]) end
return due
