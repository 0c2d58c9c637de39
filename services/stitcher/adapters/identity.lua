-- Identity resolution for a batch of events, atomically (one script call per batch).
-- Mirrors services/stitcher/core/identity.py step by step; key names come from Keys via ARGV.
-- ARGV: 1 id head, 2 customer head, 3 customer-ids head, 4 alias head, 5 aliases-of head,
--       6 merge-outcome head, 7 now_ms, 8 outcome ttl ms, 9..24 (type, limit) x 8 in contract order,
--       25 the batch as one JSON array of [event_id, occurred_ms (string), mint_cid, [id_key, ...]]
--       (one argument instead of thousands: packing arguments was the client's biggest cost).
-- Returns cjson [[customer_id, [conflict types], [[kind, survivor, loser, [types], limit|false]]], ...]
local ID, CUST, IDS, ALIAS, ALIASES, OUT = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local NOW, OUT_TTL = ARGV[7], ARGV[8]
local TYPES, LIMIT = {}, {}
for x = 0, 7 do
  local t = ARGV[9 + 2 * x]
  TYPES[#TYPES + 1] = t
  LIMIT[t] = tonumber(ARGV[10 + 2 * x])
end

-- Byte order, not the server's collation locale, so Redis and Python agree on ties.
local function bytes_lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function type_of(k) return string.match(k, '^([^:]+):') end

local function canonical(c)
  for _ = 1, 64 do
    local a = redis.call('GET', ALIAS .. c)
    if not a then return c end
    c = a
  end
  return c
end

local function count(c, t) return tonumber(redis.call('HGET', CUST .. c, 'n:' .. t) or '0') end
local function first_seen(c) return tonumber(redis.call('HGET', CUST .. c, 'first_seen_ms')) end

local function types_of(a, b)
  local seen, out = {}, {}
  for _, t in ipairs(a) do seen[t] = true end
  for _, t in ipairs(b) do seen[t] = true end
  for _, t in ipairs(TYPES) do if seen[t] then out[#out + 1] = t end end
  return out
end

local function merge(loser, survivor)
  for _, k in ipairs(redis.call('SMEMBERS', IDS .. loser)) do
    redis.call('SET', ID .. k, survivor)
    redis.call('SADD', IDS .. survivor, k)
  end
  for _, t in ipairs(TYPES) do
    local n = count(loser, t)
    if n > 0 then redis.call('HINCRBY', CUST .. survivor, 'n:' .. t, n) end
  end
  local lost = redis.call('HGET', CUST .. loser, 'first_seen_ms')
  if tonumber(lost) < first_seen(survivor) then redis.call('HSET', CUST .. survivor, 'first_seen_ms', lost) end
  -- Chains stay compressed: everything merged into the loser now points straight at the survivor.
  local moved = redis.call('SMEMBERS', ALIASES .. loser)
  moved[#moved + 1] = loser
  for _, c in ipairs(moved) do
    redis.call('SET', ALIAS .. c, survivor)
    redis.call('SADD', ALIASES .. survivor, c)
  end
  redis.call('DEL', ALIASES .. loser, IDS .. loser, CUST .. loser)
end

local function resolve(eid, ms_text, mint, keys)
  local ms = tonumber(ms_text)
  local linked, order, unseen = {}, {}, {}
  for _, k in ipairs(keys) do
    local c = redis.call('GET', ID .. k)
    if c then
      c = canonical(c)
      if not linked[c] then linked[c] = {}; order[#order + 1] = c end
      table.insert(linked[c], type_of(k))
    else
      unseen[#unseen + 1] = k
    end
  end
  local outcomes, conflicts, cid = {}, {}, nil
  if #order == 0 then
    cid = canonical(mint)
    if redis.call('EXISTS', CUST .. cid) == 0 then
      redis.call('HSET', CUST .. cid, 'first_seen_ms', ms_text, 'created_ms', NOW)
    end
  else
    local fs = {}
    for _, c in ipairs(order) do fs[c] = first_seen(c) end
    table.sort(order, function(a, b)
      if fs[a] ~= fs[b] then return fs[a] < fs[b] end
      return bytes_lt(a, b)
    end)
    cid = order[1]
    for x = 2, #order do
      local other = order[x]
      local types = types_of(linked[cid], linked[other])
      local over = false
      for _, t in ipairs(TYPES) do
        if count(cid, t) + count(other, t) > LIMIT[t] then over = t; break end
      end
      if over then
        outcomes[#outcomes + 1] = {'conflict', cid, other, types, over}
        conflicts[#conflicts + 1] = over
      else
        merge(other, cid)
        outcomes[#outcomes + 1] = {'merge', cid, other, types, false}
      end
    end
  end
  for _, k in ipairs(unseen) do
    local t = type_of(k)
    if count(cid, t) + 1 > LIMIT[t] then
      conflicts[#conflicts + 1] = t
    else
      redis.call('SET', ID .. k, cid)
      redis.call('SADD', IDS .. cid, k)
      redis.call('HINCRBY', CUST .. cid, 'n:' .. t, 1)
    end
  end
  if ms < first_seen(cid) then redis.call('HSET', CUST .. cid, 'first_seen_ms', ms_text) end
  local result = {cid, conflicts, outcomes}
  if #outcomes > 0 then redis.call('SET', OUT .. eid, cjson.encode(result), 'PX', OUT_TTL) end
  return result
end

local results = {}
for _, item in ipairs(cjson.decode(ARGV[25])) do
  local eid, ms_text, mint, keys = item[1], item[2], item[3], item[4]
  local stored = redis.call('GET', OUT .. eid)
  if stored then
    local r = cjson.decode(stored)
    r[1] = canonical(r[1])
    results[#results + 1] = r
  else
    results[#results + 1] = resolve(eid, ms_text, mint, keys)
  end
end
return cjson.encode(results)
