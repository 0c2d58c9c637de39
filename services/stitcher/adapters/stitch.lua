-- One call per batch: resolve each event's customer (core/identity.py) and write its touchpoint into that
-- customer's journey (core/journey.py), in arrival order, atomically. core/model.py StitchModel drives the
-- two Python models in exactly this order; tests/integration/stitcher/test_lua_matches_model.py holds
-- the two together. Key names come from Keys via ARGV (heads, or head + tail around the customer id).
--
-- ARGV: 1 id head, 2 customer head, 3 customer-ids head, 4 alias head, 5 aliases-of head,
--       6 merge-outcome head, 7/8 timeline head/tail, 9/10 touchpoints, 11/12 summary, 13/14 masked,
--       15 now_ms (created_ms of new customers), 16 outcome ttl ms, 17 max touchpoints, 18 retention ms,
--       19 ttl slack ms, 20..35 (type, limit) x 8 in contract order,
--       36 the batch: one JSON array, per event [event_id, occurred_ms (string: doubles lose digits in
--          cjson's encoder, and strings go back to Redis verbatim), mint, n, id_key 1, mask 1, ... id_key n,
--          mask n, touchpoint length, channel, department, journey type, stage, nps, in|out] flattened
--          into one list ('' = absent),
--       37 every touchpoint JSON of the batch concatenated (cut by length: no escaping either side).
-- Returns a flat array, per event: customer_id, status (1 written, 0 duplicate, 2 capped), and '' or the
-- JSON [customer_id, [conflict types], [[kind, survivor, loser, [types], limit|false], ...]] (the same
-- text the merge-outcome key keeps, so a replay returns it without re-encoding).
--
-- Cost: every write is also fed to the AOF, so writes are what to save. Per event, in the common case
-- (a returning customer, nothing merged): reads HMGET customer, HMGET masks, HMGET summary; writes HSETNX
-- touchpoint (dedup and store in one), ZADD timeline, one HSET of the summary. Identifier and outcome keys
-- of the whole batch are read with one MGET each and mirrored in Lua tables that every write here updates.
local ID, CUST, IDS, ALIAS, ALIASES, OUT = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local TLH, TLT, EVH, EVT, SUH, SUT, MAH, MAT = ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12],
  ARGV[13], ARGV[14]
local NOW, OUT_TTL, CAP = ARGV[15], ARGV[16], tonumber(ARGV[17])
local TTL, SLACK = tonumber(ARGV[18]), tonumber(ARGV[19])
local TYPES, LIMIT, NFIELDS = {}, {}, {}
for x = 0, 7 do
  local t = ARGV[20 + 2 * x]
  TYPES[#TYPES + 1] = t
  LIMIT[t] = tonumber(ARGV[21 + 2 * x])
  NFIELDS[#NFIELDS + 1] = 'n:' .. t
end
local WRITTEN, DUPLICATE, CAPPED = 1, 0, 2
local CHUNK = 1000 -- unpack() has a stack limit

-- Byte order, not the server's collation locale, so Redis and Python agree on ties.
local function bytes_lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function chunked(cmd, key, list)
  for i = 1, #list, CHUNK do
    if key then
      redis.call(cmd, key, unpack(list, i, math.min(i + CHUNK - 1, #list)))
    else
      redis.call(cmd, unpack(list, i, math.min(i + CHUNK - 1, #list)))
    end
  end
end

local function mget(head, names)
  local out = {}
  for i = 1, #names, CHUNK do
    local keys = {}
    for j = i, math.min(i + CHUNK - 1, #names) do keys[#keys + 1] = head .. names[j] end
    local got = redis.call('MGET', unpack(keys))
    for j = 1, #got do out[names[i + j - 1]] = got[j] end
  end
  return out
end

-- ---- identity graph (core/identity.py) -------------------------------------------------------
-- Mirrors of this batch's reads: idmap id_key -> customer (false: unseen), cust customer -> {fs, fst,
-- n[type]} (false: no hash), alias customer -> survivor (false: none), recorded event_id -> outcome.
local idmap, cust, alias, recorded = {}, {}, {}, {}

local function type_of(k) return string.match(k, '^([^:]+):') end

local function load(c)
  local x = cust[c]
  if x == nil then
    local r = redis.call('HMGET', CUST .. c, 'first_seen_ms', unpack(NFIELDS))
    if r[1] then
      x = {fs = tonumber(r[1]), fst = r[1], n = {}}
      for i, t in ipairs(TYPES) do x.n[t] = tonumber(r[i + 1] or '0') end
      -- A customer with a hash is never an alias: a merge deletes the loser's hash, and minting goes
      -- through canonical() first. So no GET of its alias key.
      if alias[c] == nil then alias[c] = false end
    else
      x = false
    end
    cust[c] = x
  end
  return x
end

local function canonical(c)
  for _ = 1, 64 do
    local a = alias[c]
    if a == nil then
      a = redis.call('GET', ALIAS .. c) or false
      alias[c] = a
    end
    if not a then return c end
    c = a
  end
  return c
end

local function types_of(a, b)
  local seen, out = {}, {}
  for _, t in ipairs(a) do seen[t] = true end
  for _, t in ipairs(b) do seen[t] = true end
  for _, t in ipairs(TYPES) do if seen[t] then out[#out + 1] = t end end
  return out
end

-- Merge loser into survivor; survivor hash fields to write are left in dirty (one HSET per event).
local function merge(loser, survivor, dirty)
  local lx, sx = cust[loser], cust[survivor]
  local ks = redis.call('SMEMBERS', IDS .. loser)
  if #ks > 0 then
    local kv = {}
    for _, k in ipairs(ks) do
      kv[#kv + 1] = ID .. k
      kv[#kv + 1] = survivor
      idmap[k] = survivor
    end
    chunked('MSET', nil, kv)
    chunked('SADD', IDS .. survivor, ks)
  end
  for _, t in ipairs(TYPES) do
    if lx.n[t] > 0 then
      sx.n[t] = sx.n[t] + lx.n[t]
      dirty['n:' .. t] = sx.n[t]
    end
  end
  if lx.fs < sx.fs then
    sx.fs, sx.fst = lx.fs, lx.fst
    dirty.first_seen_ms = lx.fst
  end
  -- Chains stay compressed: everything merged into the loser now points straight at the survivor.
  local moved = redis.call('SMEMBERS', ALIASES .. loser)
  moved[#moved + 1] = loser
  local kv = {}
  for _, c in ipairs(moved) do
    kv[#kv + 1] = ALIAS .. c
    kv[#kv + 1] = survivor
    alias[c] = survivor
  end
  chunked('MSET', nil, kv)
  chunked('SADD', ALIASES .. survivor, moved)
  redis.call('DEL', ALIASES .. loser, IDS .. loser, CUST .. loser)
  cust[loser] = false
end

-- Returns customer id, whether anything merged, and '' or the outcome JSON.
local function resolve(eid, ms_text, mint, keys)
  local ms = tonumber(ms_text)
  local linked, order, unseen = {}, {}, {}
  for _, k in ipairs(keys) do
    local c = idmap[k]
    if c then
      load(c)
      c = canonical(c)
      if not linked[c] then linked[c] = {}; order[#order + 1] = c end
      local l = linked[c]
      l[#l + 1] = type_of(k)
    else
      unseen[#unseen + 1] = k
    end
  end
  local outcomes, conflicts, dirty, merged = {}, {}, {}, false
  local cid, x
  if #order == 0 then
    load(mint)
    cid = canonical(mint)
    x = load(cid)
    if not x then
      x = {fs = ms, fst = ms_text, n = {}}
      for _, t in ipairs(TYPES) do x.n[t] = 0 end
      cust[cid] = x
      dirty.first_seen_ms, dirty.created_ms = ms_text, NOW
    end
  else
    for _, c in ipairs(order) do load(c) end
    table.sort(order, function(a, b)
      local fa, fb = cust[a].fs, cust[b].fs
      if fa ~= fb then return fa < fb end
      return bytes_lt(a, b)
    end)
    cid = order[1]
    x = cust[cid]
    for i = 2, #order do
      local other = order[i]
      local types = types_of(linked[cid], linked[other])
      local ox, over = cust[other], false
      for _, t in ipairs(TYPES) do
        if x.n[t] + ox.n[t] > LIMIT[t] then over = t; break end
      end
      if over then
        outcomes[#outcomes + 1] = {'conflict', cid, other, types, over}
        conflicts[#conflicts + 1] = over
      else
        merge(other, cid, dirty)
        outcomes[#outcomes + 1] = {'merge', cid, other, types, false}
        merged = true
      end
    end
  end
  local link, kv = {}, {}
  for _, k in ipairs(unseen) do
    local t = type_of(k)
    if x.n[t] + 1 > LIMIT[t] then
      conflicts[#conflicts + 1] = t
    else
      x.n[t] = x.n[t] + 1
      dirty['n:' .. t] = x.n[t]
      link[#link + 1] = k
      kv[#kv + 1] = ID .. k
      kv[#kv + 1] = cid
      idmap[k] = cid
    end
  end
  if #link > 0 then
    redis.call('MSET', unpack(kv))
    redis.call('SADD', IDS .. cid, unpack(link))
  end
  if ms < x.fs then
    x.fs, x.fst = ms, ms_text
    dirty.first_seen_ms = ms_text
  end
  local fields = {}
  for f, v in pairs(dirty) do fields[#fields + 1] = f; fields[#fields + 1] = v end
  if #fields > 0 then redis.call('HSET', CUST .. cid, unpack(fields)) end
  local extra = ''
  if #outcomes > 0 or #conflicts > 0 then
    extra = cjson.encode({cid, conflicts, outcomes})
    redis.call('SET', OUT .. eid, extra, 'PX', OUT_TTL)
    recorded[eid] = extra
  end
  return cid, merged, extra
end

-- ---- journey store (core/journey.py) ---------------------------------------------------------
local function facts_of(tp)
  local j = tp.journey or {}
  local nps = ''
  if tp.nps ~= nil then nps = tostring(tp.nps) end
  local dir = 'in'
  if tp.direction == 'outbound' then dir = 'out' end
  return {ch = tp.channel, dept = tp.department or '', jt = j.type or '', st = j.stage or '', nps = nps, dir = dir}
end

-- (score, eid) later than the stored (ms, id)?
local function later(cur_ms, cur_id, score, eid)
  if not cur_ms then return true end
  local m = tonumber(cur_ms)
  if score ~= m then return score > m end
  return bytes_lt(cur_id, eid)
end

local function tally(delta, f, by)
  delta.count = (delta.count or 0) + by
  delta[f.dir] = (delta[f.dir] or 0) + by
  local ch = 'ch:' .. f.ch
  delta[ch] = (delta[ch] or 0) + by
  if f.dept ~= '' then
    local d = 'dept:' .. f.dept
    delta[d] = (delta[d] or 0) + by
  end
end

-- Read the summary fields in names not read yet into cur (false: absent).
local function fetch(sk, cur, names)
  local want = {}
  for _, n in ipairs(names) do if cur[n] == nil then want[#want + 1] = n end end
  if #want == 0 then return end
  local got = redis.call('HMGET', sk, unpack(want))
  for i, n in ipairs(want) do cur[n] = got[i] end
end

local function add(c, eid, score_text, tp, f)
  local tl, ev, sk = TLH .. c .. TLT, EVH .. c .. EVT, SUH .. c .. SUT
  if redis.call('HSETNX', ev, eid, tp) == 0 then return DUPLICATE end
  local score = tonumber(score_text)
  local delta, cur, set = {}, {}, {}
  tally(delta, f, 1)
  local names = {'count', 'v', 'first_ms', 'last_ms', 'last_id', 'truncated'}
  for n in pairs(delta) do if n ~= 'count' then names[#names + 1] = n end end
  if f.jt ~= '' then
    names[#names + 1] = 'stage_ms:' .. f.jt
    names[#names + 1] = 'stage_id:' .. f.jt
  end
  if f.nps ~= '' then
    names[#names + 1] = 'nps_ms'
    names[#names + 1] = 'nps_id'
  end
  fetch(sk, cur, names)
  local first = nil
  if tonumber(cur.count or '0') >= CAP then
    -- Full: the oldest (by event time, then id) goes, or this event is older and is not kept.
    if cur.truncated ~= '1' then set[#set + 1] = 'truncated'; set[#set + 1] = '1' end
    local o = redis.call('ZRANGE', tl, 0, 1, 'WITHSCORES')
    local oid, oscore = o[1], tonumber(o[2])
    if score < oscore or (score == oscore and bytes_lt(eid, oid)) then
      redis.call('HDEL', ev, eid)
      if #set > 0 then redis.call('HSET', sk, unpack(set)) end
      return CAPPED
    end
    local gone = facts_of(cjson.decode(redis.call('HGET', ev, oid)))
    redis.call('ZREM', tl, oid)
    redis.call('HDEL', ev, oid)
    tally(delta, gone, -1)
    local more = {}
    for n in pairs(delta) do more[#more + 1] = n end
    fetch(sk, cur, more)
    first = score_text
    if o[3] and tonumber(o[4]) < score then first = o[4] end
  end
  redis.call('ZADD', tl, score_text, eid)
  local del = {}
  for n, d in pairs(delta) do
    if d ~= 0 then
      local v = tonumber(cur[n] or '0') + d
      if v > 0 then
        set[#set + 1] = n
        set[#set + 1] = v
      elseif cur[n] then
        del[#del + 1] = n -- absent, not "0": the summary must not depend on what came and went
      end
    end
  end
  if later(cur.last_ms, cur.last_id, score, eid) then
    set[#set + 1] = 'last_ms'; set[#set + 1] = score_text
    set[#set + 1] = 'last_id'; set[#set + 1] = eid
    set[#set + 1] = 'last_channel'; set[#set + 1] = f.ch
  end
  if f.jt ~= '' and later(cur['stage_ms:' .. f.jt], cur['stage_id:' .. f.jt], score, eid) then
    set[#set + 1] = 'stage:' .. f.jt; set[#set + 1] = f.st
    set[#set + 1] = 'stage_ms:' .. f.jt; set[#set + 1] = score_text
    set[#set + 1] = 'stage_id:' .. f.jt; set[#set + 1] = eid
  end
  if f.nps ~= '' and later(cur.nps_ms, cur.nps_id, score, eid) then
    set[#set + 1] = 'nps'; set[#set + 1] = f.nps
    set[#set + 1] = 'nps_ms'; set[#set + 1] = score_text
    set[#set + 1] = 'nps_id'; set[#set + 1] = eid
  end
  if cur.v ~= '1' then set[#set + 1] = 'v'; set[#set + 1] = '1' end
  if first then
    if cur.first_ms ~= first then set[#set + 1] = 'first_ms'; set[#set + 1] = first end
  elseif not cur.first_ms or score < tonumber(cur.first_ms) then
    set[#set + 1] = 'first_ms'; set[#set + 1] = score_text
  end
  if #set > 0 then redis.call('HSET', sk, unpack(set)) end
  if #del > 0 then redis.call('HDEL', sk, unpack(del)) end
  return WRITTEN
end

local function put_masks(c, pairs_)
  local mk = MAH .. c .. MAT
  local names = {}
  for i = 1, #pairs_, 2 do names[#names + 1] = pairs_[i] end
  local got = redis.call('HMGET', mk, unpack(names))
  local set = {}
  for i = 1, #names do
    if got[i] ~= pairs_[2 * i] then
      set[#set + 1] = names[i]
      set[#set + 1] = pairs_[2 * i]
    end
  end
  if #set > 0 then redis.call('HSET', mk, unpack(set)) end
end

-- Fold every customer merged into c whose journey still exists (its own keys), then drop its keys.
-- Runs right after an event merged into c, so no journey of a merged-away customer outlives the batch.
local function fold(c)
  local merged = redis.call('SMEMBERS', ALIASES .. c)
  table.sort(merged, bytes_lt)
  local cmask = MAH .. c .. MAT
  for _, l in ipairs(merged) do
    local ltl, lev, lsum, lmask = TLH .. l .. TLT, EVH .. l .. EVT, SUH .. l .. SUT, MAH .. l .. MAT
    if redis.call('EXISTS', ltl, lmask) > 0 then
      local items = redis.call('ZRANGE', ltl, 0, -1, 'WITHSCORES')
      for x = 1, #items, 2 do
        local tp = redis.call('HGET', lev, items[x])
        add(c, items[x], items[x + 1], tp, facts_of(cjson.decode(tp)))
      end
      local masks = redis.call('HGETALL', lmask)
      if #masks > 0 then chunked('HSET', cmask, masks) end
      if redis.call('HGET', lsum, 'truncated') then redis.call('HSET', SUH .. c .. SUT, 'truncated', '1') end
      redis.call('DEL', ltl, lev, lsum, lmask)
    end
  end
end

-- ---- the batch -------------------------------------------------------------------------------
local items, blob = cjson.decode(ARGV[36]), ARGV[37]
local events, eids, idnames, seen = {}, {}, {}, {}
local i, pos = 1, 1
while i <= #items do
  local n = items[i + 3]
  local e = {eid = items[i], ms = items[i + 1], mint = items[i + 2], keys = {}, masks = {}}
  for j = 0, n - 1 do
    local k = items[i + 4 + 2 * j]
    e.keys[#e.keys + 1] = k
    e.masks[#e.masks + 1] = k
    e.masks[#e.masks + 1] = items[i + 5 + 2 * j]
    if not seen[k] then seen[k] = true; idnames[#idnames + 1] = k end
  end
  i = i + 4 + 2 * n
  local len = items[i]
  e.tp = string.sub(blob, pos, pos + len - 1)
  pos = pos + len
  e.f = {ch = items[i + 1], dept = items[i + 2], jt = items[i + 3], st = items[i + 4], nps = items[i + 5],
         dir = items[i + 6]}
  i = i + 7
  events[#events + 1] = e
  eids[#eids + 1] = e.eid
end
idmap = mget(ID, idnames)
recorded = mget(OUT, eids)

local out, touched = {}, {}
for _, e in ipairs(events) do
  local cid, merged, extra
  local stored = recorded[e.eid]
  if stored then
    -- Redelivered after it merged or conflicted: the same outcome again, for its (current) survivor.
    cid = canonical(cjson.decode(stored)[1])
    merged, extra = false, stored
  else
    cid, merged, extra = resolve(e.eid, e.ms, e.mint, e.keys)
  end
  if merged then fold(cid) end
  put_masks(cid, e.masks)
  out[#out + 1] = cid
  out[#out + 1] = add(cid, e.eid, e.ms, e.tp, e.f)
  out[#out + 1] = extra
  if not touched[cid] then touched[cid] = true; touched[#touched + 1] = cid end
end

-- Every key of a written journey lives at least TTL after the write. Re-armed (to TTL + SLACK) only when
-- under TTL: a customer written every batch costs one PTTL here, not four PEXPIREs.
for _, c in ipairs(touched) do
  if not alias[c] then -- merged away later in this batch: its keys are gone
    local tl = TLH .. c .. TLT
    if redis.call('PTTL', tl) < TTL then
      local ms = TTL + SLACK
      redis.call('PEXPIRE', tl, ms)
      redis.call('PEXPIRE', EVH .. c .. EVT, ms)
      redis.call('PEXPIRE', SUH .. c .. SUT, ms)
      redis.call('PEXPIRE', MAH .. c .. MAT, ms)
    end
  end
end
return out
