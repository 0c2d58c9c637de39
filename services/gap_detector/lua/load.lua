-- Load the detector state of a batch of customers in one call (gap detector), and move the watermark.
-- KEYS[1] watermark STRING, KEYS[2] timers ZSET, KEYS[3] per-partition event-time HASH.
-- ARGV[1..4] key templates with '@CID@' for: alias, aliases_of, detector_state, open_alerts (from Keys).
-- ARGV[5] JSON {parts: {partition: max event ms in this batch}, now, idle, lateness} ('' : leave it).
-- ARGV[6..] customer ids as the events carry them, each followed by an extra loser id ('' for none).
-- Returns JSON {wm, customers: [{cid, det, open, timers, losers: [{cid, det, open, timers}]}]} where cid
-- is the alias-resolved survivor and losers are merged-away customers whose state was not folded yet.
local function key(tpl, cid) return (string.gsub(tpl, '@CID@', cid)) end

-- The watermark: per partition the newest event time; the minimum over partitions that saw an event
-- within `idle` ms (one partition read ahead must not fire another's timers), the maximum when all are
-- idle; minus the lateness. It only moves forward.
local wm = redis.call('GET', KEYS[1])
if ARGV[5] ~= '' then
  local arg = cjson.decode(ARGV[5])
  for part, t in pairs(arg.parts) do
    local cur = redis.call('HGET', KEYS[3], part)
    local best = t
    if cur then best = math.max(t, tonumber(string.match(cur, '^(-?%d+)'))) end
    redis.call('HSET', KEYS[3], part, string.format('%d:%d', best, arg.now))
  end
  local active, newest = nil, nil
  local all = redis.call('HGETALL', KEYS[3])
  for i = 1, #all, 2 do
    local t, seen = string.match(all[i + 1], '^(-?%d+):(-?%d+)$')
    t, seen = tonumber(t), tonumber(seen)
    if not newest or t > newest then newest = t end
    if arg.now - seen < arg.idle and (not active or t < active) then active = t end
  end
  if newest then
    local cand = (active or newest) - arg.lateness
    if not wm or cand > tonumber(wm) then
      wm = string.format('%d', cand)
      redis.call('SET', KEYS[1], wm)
    end
  end
end

local function resolve(cid)
  local c = cid
  for _ = 1, 16 do
    local a = redis.call('GET', key(ARGV[1], c))
    if not a then return c end
    c = a
  end
  return c
end

local function snapshot(cid)
  local det = redis.call('HGETALL', key(ARGV[3], cid))
  local timers = {}
  for i = 1, #det, 2 do
    local f = det[i]
    if string.sub(f, 1, 2) == 'j:' then
      local score = redis.call('ZSCORE', KEYS[2], cid .. '|' .. string.sub(f, 3))
      if score then timers[string.sub(f, 3)] = tonumber(score) end
    end
  end
  return {cid = cid, det = det, open = redis.call('HGETALL', key(ARGV[4], cid)), timers = timers}
end

local out = {}
local i = 6
while i <= #ARGV do
  local survivor = resolve(ARGV[i])
  local entry = snapshot(survivor)
  entry.asked = ARGV[i]
  local losers, seen, queue = {}, {[survivor] = true}, redis.call('SMEMBERS', key(ARGV[2], survivor))
  if ARGV[i + 1] ~= '' then table.insert(queue, ARGV[i + 1]) end
  if ARGV[i] ~= survivor then table.insert(queue, ARGV[i]) end
  local n = 0
  while #queue > 0 and n < 64 do
    local l = table.remove(queue)
    n = n + 1
    if not seen[l] then
      seen[l] = true
      if redis.call('EXISTS', key(ARGV[3], l), key(ARGV[4], l)) > 0 then
        table.insert(losers, snapshot(l))
      end
      for _, m in ipairs(redis.call('SMEMBERS', key(ARGV[2], l))) do table.insert(queue, m) end
    end
  end
  entry.losers = losers
  table.insert(out, entry)
  i = i + 2
end
return cjson.encode({wm = wm and tonumber(wm) or false, customers = out})
