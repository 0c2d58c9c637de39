-- Shared by load.lua and apply.lua (prepended by the store): the detector's event-time watermark.
-- Per stitched-events partition the newest event time ('<ms>:<wall ms seen>' in the parts HASH); the
-- minimum over partitions that saw an event within `idle` ms (one partition read ahead must not fire
-- another's timers), the maximum when all are idle; minus the lateness. It only moves forward.
-- arg = {parts = {partition: max event ms}, busy = {partitions behind their head}, now, idle, lateness,
-- write}. With write = false nothing is
-- stored: load.lua only previews the watermark the batch will run under, and apply.lua stores it once
-- the batch's state is written, so a concurrent timer claim never sees a watermark ahead of the state.
local function advance_watermark(wm_key, parts_key, arg)
  local wm = redis.call('GET', wm_key)
  local merged = {}
  local all = redis.call('HGETALL', parts_key)
  for i = 1, #all, 2 do
    local t, seen = string.match(all[i + 1], '^(-?%d+):(-?%d+)$')
    merged[all[i]] = {tonumber(t), tonumber(seen)}
  end
  -- Partitions still behind their head (the consumer has not read them up to date) are not idle even
  -- when this batch holds none of their records: their newest event time keeps holding the watermark.
  for _, part in ipairs(arg.busy or {}) do
    local cur = merged[part]
    if cur then
      cur[2] = arg.now
      if arg.write then redis.call('HSET', parts_key, part, string.format('%d:%d', cur[1], arg.now)) end
    end
  end
  for part, t in pairs(arg.parts) do
    local cur = merged[part]
    merged[part] = {cur and math.max(cur[1], t) or t, arg.now}
    if arg.write then redis.call('HSET', parts_key, part, string.format('%d:%d', merged[part][1], arg.now)) end
  end
  local active, newest = nil, nil
  for _, v in pairs(merged) do
    if not newest or v[1] > newest then newest = v[1] end
    if arg.now - v[2] < arg.idle and (not active or v[1] < active) then active = v[1] end
  end
  if newest then
    local cand = (active or newest) - arg.lateness
    if not wm or cand > tonumber(wm) then
      wm = string.format('%d', cand)
      if arg.write then redis.call('SET', wm_key, wm) end
    end
  end
  return wm
end
