-- Load the detector state of a batch of customers in one call (gap detector), and the watermark (which
-- only the tick's clock_advance.lua moves).
-- KEYS[1] watermark STRING, KEYS[2] timers ZSET.
-- ARGV[1..4] key templates with '@CID@' for: alias, aliases_of, detector_state, open_alerts (from Keys).
-- ARGV[5] MessagePack list, per customer: {id as the events carry it, extra loser id ('' for none)[,
-- token of the state the worker has cached (field 'n' of the state hash), journeys with a mark in it]}.
-- Returns nested arrays (no JSON: the stored values travel as the bytes they are):
--   {wm or nil, {{asked, cid, det, timers, open, losers}, ...}}
-- where cid is the alias-resolved survivor, det its state hash (flat HGETALL; nil when it still holds
-- the cached token: the worker's copy is current), timers a flat {journey, deadline, ...} of its
-- pending stall timers, open its open-alert hash (only for a state written before summaries were kept
-- in the state hash, field 'o'; else empty), and losers the merged-away customers whose state was not
-- folded yet: {{cid, det, timers, open}, ...}.
local function key(tpl, cid) return (string.gsub(tpl, '@CID@', cid)) end

local wm = redis.call('GET', KEYS[1])

local function resolve(cid)
  local c = cid
  for _ = 1, 16 do
    local a = redis.call('GET', key(ARGV[1], c))
    if not a then return c end
    c = a
  end
  return c
end

local function snapshot(cid, always_open)
  local det = redis.call('HGETALL', key(ARGV[3], cid))
  local timers = {}
  local summaries = false
  for i = 1, #det, 2 do
    local f = det[i]
    if string.sub(f, 1, 2) == 'j:' then
      local score = redis.call('ZSCORE', KEYS[2], cid .. '|' .. string.sub(f, 3))
      if score then
        table.insert(timers, string.sub(f, 3))
        table.insert(timers, score)
      end
    elseif f == 'o' then
      summaries = true
    end
  end
  local open = {}
  if always_open or not summaries then open = redis.call('HGETALL', key(ARGV[4], cid)) end
  return {cid, det, timers, open}
end

local function timers_of(cid, journeys)
  local timers = {}
  for _, j in ipairs(journeys) do
    local score = redis.call('ZSCORE', KEYS[2], cid .. '|' .. j)
    if score then
      table.insert(timers, j)
      table.insert(timers, score)
    end
  end
  return timers
end

local out = {}
for _, ask in ipairs(cmsgpack.unpack(ARGV[5])) do
  local asked, extra, token = ask[1], ask[2], ask[3]
  local survivor = resolve(asked)
  local entry
  if token and survivor == asked and redis.call('HGET', key(ARGV[3], survivor), 'n') == token then
    entry = {survivor, false, timers_of(survivor, ask[4]), {}}
  else
    entry = snapshot(survivor, false)
  end
  local losers, seen, queue = {}, {[survivor] = true}, redis.call('SMEMBERS', key(ARGV[2], survivor))
  if extra ~= '' then table.insert(queue, extra) end
  if asked ~= survivor then table.insert(queue, asked) end
  local n = 0
  while #queue > 0 and n < 64 do
    local l = table.remove(queue)
    n = n + 1
    if not seen[l] then
      seen[l] = true
      if redis.call('EXISTS', key(ARGV[3], l), key(ARGV[4], l)) > 0 then
        table.insert(losers, snapshot(l, true))  -- its open alerts move to the survivor
      end
      for _, m in ipairs(redis.call('SMEMBERS', key(ARGV[2], l))) do table.insert(queue, m) end
    end
  end
  table.insert(out, {asked, entry[1], entry[2], entry[3], entry[4], losers})
end
return {wm, out}
