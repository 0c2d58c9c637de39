-- Load the detector state of a batch of customers in one call (gap detector); preview (or, on a timer
-- tick, store) the watermark with advance_watermark from watermark.lua.
-- KEYS[1] watermark STRING, KEYS[2] timers ZSET, KEYS[3] per-partition event-time HASH.
-- ARGV[1..4] key templates with '@CID@' for: alias, aliases_of, detector_state, open_alerts (from Keys).
-- ARGV[5] JSON {parts: {partition: max event ms in this batch}, now, idle, lateness, write} ('': none).
-- ARGV[6..] customer ids as the events carry them, each followed by an extra loser id ('' for none).
-- Returns JSON {wm, customers: [{cid, det, open, timers, losers: [{cid, det, open, timers}]}]} where cid
-- is the alias-resolved survivor and losers are merged-away customers whose state was not folded yet.
local function key(tpl, cid) return (string.gsub(tpl, '@CID@', cid)) end

local wm = redis.call('GET', KEYS[1])
if ARGV[5] ~= '' then wm = advance_watermark(KEYS[1], KEYS[3], cjson.decode(ARGV[5])) end

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
