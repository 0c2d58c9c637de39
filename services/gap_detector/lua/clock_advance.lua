#!lua
-- Queue a watermark candidate and apply the candidates the detectors' evidence now covers (core/clock.py).
-- Called through services/gap_detector/script_calls.py WatermarkAdvance.
-- KEYS[1] pending: clock:pending ZSET member '<noted ms>:<candidate>', score noted ms
-- KEYS[2] watermark: STRING
-- ARGV[1] noted_ms: wall time after the inputs were read
-- ARGV[2] candidate: candidate watermark ('' for none)
-- ARGV[3] evidence_ms: seen evidence ms ('' for none)
-- ARGV[4] max_pending: most candidates kept waiting
-- When full, a new candidate is dropped (not the oldest: the oldest applies first; a later one only
-- waits for the next tick's), so the watermark still moves in steps through a long backlog.
-- Returns the watermark (it only moves forward).
if ARGV[2] ~= '' and redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1] .. ':' .. ARGV[2])
end
local wm = redis.call('GET', KEYS[2])
if ARGV[3] ~= '' then
  local ready = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
  local best = nil
  for _, member in ipairs(ready) do
    local cand = tonumber(string.match(member, ':(-?%d+)$'))
    if not best or cand > best then best = cand end
  end
  if #ready > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3]) end
  if best and (not wm or best > tonumber(wm)) then
    wm = string.format('%d', best)
    redis.call('SET', KEYS[2], wm)
  end
end
return wm
