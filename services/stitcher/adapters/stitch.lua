-- One call per batch: resolve each event's customer (core/identity.py) and write its touchpoint into that
-- customer's journey (core/journey.py), in arrival order, atomically. core/model.py StitchModel drives the
-- two Python models in exactly this order; tests/integration/stitcher/test_lua_matches_model.py holds
-- the two together. Key names come from Keys via ARGV (heads, or head + tail around the customer id).
--
-- ARGV: 1 id head, 2 customer head, 3 customer-ids head, 4 alias head, 5 aliases-of head,
--       6 merge-outcome head, 7/8 timeline head/tail, 9/10 touchpoints, 11/12 summary, 13/14 masked,
--       15 now_ms (created_ms of new customers), 16 outcome ttl ms, 17 max touchpoints, 18 retention ms,
--       19 ttl slack ms, 20..35 (type, limit) x 8 in contract order,
--       36 the batch: one MessagePack array, per event [event_id, occurred_ms (string: it goes back to
--          Redis verbatim), mint, n, id_key 1, mask 1, ... id_key n, mask n, channel, department, journey
--          type, stage, nps, in|out] flattened into one list ('' = absent). cmsgpack.unpack is C and makes
--          no per-event table (cjson.decode of the same list cost ~2 us/event more),
--       37.. event i's touchpoint JSON is ARGV[36 + i] (each becomes a Lua string once; one blob cut with
--          string.sub hashed every byte twice: Redis' Lua hashes whole strings when interning them).
-- Returns a flat array, per event: customer_id, status (1 written, 0 duplicate, 2 capped), and '' or the
-- JSON [customer_id, [conflict types], [[kind, survivor, loser, [types], limit|false], ...]] (the same
-- text the merge-outcome key keeps, so a replay returns it without re-encoding).
--
-- Cost: in Redis' Lua every new table and string costs about as much as a simple command (strings are
-- hashed in full and interned, and swept by the GC after the call), and every write is also fed to the
-- AOF; so the common case (a returning customer, nothing merged, timeline not full) allocates next to
-- nothing and makes per event: HMGET masks, HSETNX touchpoint (dedup and store in one), HMGET summary,
-- ZADD timeline, one HSET of the summary; identifier and outcome keys of the whole batch are read with
-- one MGET each and mirrored in Lua tables that every write here updates. The customer hash is not read
-- on that path: identifier keys only ever name a live (canonical) customer, and the summary's first_ms
-- (the oldest kept touchpoint, so never before the customer's first_seen_ms) shows that an event later
-- than it cannot move first_seen_ms. Merges, conflicts, new identifiers, full timelines, duplicates and
-- events older than their journey take the general paths.
local ID, CUST, IDS, ALIAS, ALIASES, OUT = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local TLH, TLT, EVH, EVT, SUH, SUT, MAH, MAT = ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12],
  ARGV[13], ARGV[14]
local NOW, OUT_TTL, CAP = ARGV[15], ARGV[16], tonumber(ARGV[17])
local TTL, SLACK = tonumber(ARGV[18]), tonumber(ARGV[19])
local TYPES, LIMIT = {}, {}
for x = 0, 7 do
  local t = ARGV[20 + 2 * x]
  TYPES[#TYPES + 1] = t
  LIMIT[t] = tonumber(ARGV[21 + 2 * x])
end
local WRITTEN, DUPLICATE, CAPPED = 1, 0, 2
local CHUNK = 1000 -- unpack() has a stack limit
local unpack, call, tonumber, byte, min = unpack, redis.call, tonumber, string.byte, math.min

-- Byte order, not the server's collation locale, so Redis and Python agree on ties.
local function bytes_lt(a, b)
  local n = min(#a, #b)
  for i = 1, n do
    local x, y = byte(a, i), byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function chunked(cmd, key, list)
  for i = 1, #list, CHUNK do
    if key then
      call(cmd, key, unpack(list, i, math.min(i + CHUNK - 1, #list)))
    else
      call(cmd, unpack(list, i, math.min(i + CHUNK - 1, #list)))
    end
  end
end

local function mget(head, names)
  local out = {}
  for i = 1, #names, CHUNK do
    local keys = {}
    for j = i, math.min(i + CHUNK - 1, #names) do keys[#keys + 1] = head .. names[j] end
    local got = call('MGET', unpack(keys))
    for j = 1, #got do out[names[i + j - 1]] = got[j] end
  end
  return out
end

-- ---- the batch -------------------------------------------------------------------------------
-- Events stay in the decoded flat list; ev[i] is where event i starts.
local items = cmsgpack.unpack(ARGV[36])
local ev, eids, idnames, seen = {}, {}, {}, {}
do
  local i, nitems = 1, #items
  while i <= nitems do
    local n = items[i + 3]
    ev[#ev + 1], eids[#eids + 1] = i, items[i]
    for j = i + 4, i + 2 + 2 * n, 2 do
      local k = items[j]
      if not seen[k] then seen[k] = true; idnames[#idnames + 1] = k end
    end
    i = i + 10 + 2 * n
  end
end

-- ---- identity graph (core/identity.py) -------------------------------------------------------
-- Mirrors of this batch's reads: idmap id_key -> customer (false: unseen); FS/FST customer -> first seen
-- ms as number/text (false: no customer hash); NC customer -> {type -> identifier count} (read only when
-- a rule needs counts); alias customer -> survivor (false: none); recorded event_id -> outcome JSON.
local idmap, recorded = mget(ID, idnames), mget(OUT, eids)
local function type_of(k) return string.match(k, '^([^:]+):') end
local FS, FST, NC, alias = {}, {}, {}, {}
-- Customers whose identity graph changed in this batch (new customer, merge: MSET leaves keys without a
-- TTL): their whole graph is re-armed with their journey at the end. fresh: customer -> identifier keys
-- linked to it in this batch (they only need the TTL the rest of the graph has).
local regraph, fresh = {}, {}

-- Read with the identifier counts in the same HMGET: a customer read here is mostly one that links a
-- new identifier or merges next, which needs the counts (one call instead of two).
local FSQ = {'first_seen_ms'}
for i, t in ipairs(TYPES) do FSQ[i + 1] = 'n:' .. t end

local function first_seen(c)
  local fs = FS[c]
  if fs == nil then
    local r = call('HMGET', CUST .. c, unpack(FSQ))
    local t = r[1]
    fs = tonumber(t) or false
    FS[c], FST[c] = fs, t
    if fs and NC[c] == nil then
      local n = {}
      for i, ty in ipairs(TYPES) do n[ty] = tonumber(r[i + 1] or '0') end
      NC[c] = n
    end
    -- A customer with a hash is never an alias: a merge deletes the loser's hash, and minting goes
    -- through canonical() first. So no GET of its alias key.
    if fs and alias[c] == nil then alias[c] = false end
  end
  return fs
end

-- Identifier counts of c: all types (merges), or only those of the given keys (linking new identifiers).
local function counts(c, keys)
  local n = NC[c]
  if n == nil then n = {}; NC[c] = n end
  local want, wt = {}, {}
  if keys then
    for _, k in ipairs(keys) do
      local t = type_of(k)
      if n[t] == nil and not wt[t] then wt[t] = true; want[#want + 1] = t end
    end
  else
    for _, t in ipairs(TYPES) do if n[t] == nil then want[#want + 1] = t end end
  end
  if #want > 0 then
    local f = {}
    for i, t in ipairs(want) do f[i] = 'n:' .. t end
    local r = call('HMGET', CUST .. c, unpack(f))
    for i, t in ipairs(want) do n[t] = tonumber(r[i] or '0') end
  end
  return n
end

local function canonical(c)
  for _ = 1, 64 do
    local a = alias[c]
    if a == nil then
      a = call('GET', ALIAS .. c) or false
      alias[c] = a
    end
    if not a then return c end
    c = a
  end
  return c
end

local function types_of(a, b)
  local seen_, out = {}, {}
  for _, t in ipairs(a) do seen_[t] = true end
  for _, t in ipairs(b) do seen_[t] = true end
  for _, t in ipairs(TYPES) do if seen_[t] then out[#out + 1] = t end end
  return out
end

-- Merge loser into survivor; survivor hash fields to write are left in dirty (one HSET per event).
local function merge(loser, survivor, dirty)
  local ln, sn = counts(loser), counts(survivor)
  local ks = call('SMEMBERS', IDS .. loser)
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
    if ln[t] > 0 then
      sn[t] = sn[t] + ln[t]
      dirty['n:' .. t] = sn[t]
    end
  end
  if FS[loser] < FS[survivor] then
    FS[survivor], FST[survivor] = FS[loser], FST[loser]
    dirty.first_seen_ms = FST[loser]
  end
  -- Chains stay compressed: everything merged into the loser now points straight at the survivor.
  local moved = call('SMEMBERS', ALIASES .. loser)
  moved[#moved + 1] = loser
  local kv = {}
  for _, c in ipairs(moved) do
    kv[#kv + 1] = ALIAS .. c
    kv[#kv + 1] = survivor
    alias[c] = survivor
  end
  chunked('MSET', nil, kv)
  chunked('SADD', ALIASES .. survivor, moved)
  call('DEL', ALIASES .. loser, IDS .. loser, CUST .. loser)
  regraph[survivor] = true
  FS[loser], FST[loser], NC[loser] = false, false, nil
end

-- The general case: several customers, unseen identifiers or a new customer.
local function resolve_general(e, eid, ms, ms_text, mint, n)
  local linked, order, unseen = {}, {}, {}
  for j = e + 4, e + 2 + 2 * n, 2 do
    local k = items[j]
    local c = idmap[k]
    if c then
      first_seen(c)
      c = canonical(c)
      if not linked[c] then linked[c] = {}; order[#order + 1] = c end
      local l = linked[c]
      l[#l + 1] = type_of(k)
    else
      unseen[#unseen + 1] = k
    end
  end
  local outcomes, conflicts, dirty, merged = {}, {}, {}, false
  local cid
  if #order == 0 then
    first_seen(mint)
    cid = canonical(mint)
    if not first_seen(cid) then
      local n = {}
      for _, t in ipairs(TYPES) do n[t] = 0 end
      FS[cid], FST[cid], NC[cid] = ms, ms_text, n
      dirty.first_seen_ms, dirty.created_ms = ms_text, NOW
      regraph[cid] = true
    end
  else
    for _, c in ipairs(order) do first_seen(c) end
    table.sort(order, function(a, b)
      if FS[a] ~= FS[b] then return FS[a] < FS[b] end
      return bytes_lt(a, b)
    end)
    cid = order[1]
    for i = 2, #order do
      local other = order[i]
      local types = types_of(linked[cid], linked[other])
      local sn, on, over = counts(cid), counts(other), false
      for _, t in ipairs(TYPES) do
        if sn[t] + on[t] > LIMIT[t] then over = t; break end
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
  if #unseen > 0 then
    local sn, link, kv = counts(cid, unseen), {}, {}
    for _, k in ipairs(unseen) do
      local t = type_of(k)
      if sn[t] + 1 > LIMIT[t] then
        conflicts[#conflicts + 1] = t
      else
        sn[t] = sn[t] + 1
        dirty['n:' .. t] = sn[t]
        link[#link + 1] = k
        kv[#kv + 1] = ID .. k
        kv[#kv + 1] = cid
        idmap[k] = cid
      end
    end
    if #link > 0 then
      call('MSET', unpack(kv))
      call('SADD', IDS .. cid, unpack(link))
      local f = fresh[cid]
      if not f then f = {}; fresh[cid] = f end
      for _, k in ipairs(link) do f[#f + 1] = k end
    end
  end
  if ms < FS[cid] then
    FS[cid], FST[cid] = ms, ms_text
    dirty.first_seen_ms = ms_text
  end
  local fields = {}
  for f, v in pairs(dirty) do fields[#fields + 1] = f; fields[#fields + 1] = v end
  if #fields > 0 then call('HSET', CUST .. cid, unpack(fields)) end
  local extra = ''
  if #outcomes > 0 or #conflicts > 0 then
    extra = cjson.encode({cid, conflicts, outcomes})
    call('SET', OUT .. eid, extra, 'PX', OUT_TTL)
    recorded[eid] = extra
  end
  return cid, merged, extra
end

-- An event of c at ms: first_seen_ms moves back if it is older (what every resolution ends with).
local function settle(c, ms, ms_text)
  if ms < first_seen(c) then
    FS[c], FST[c] = ms, ms_text
    call('HSET', CUST .. c, 'first_seen_ms', ms_text)
  end
end

-- Returns customer id, whether anything merged, '' or the outcome JSON, and whether first_seen_ms is
-- still to be settled (left to add(), which reads the summary's first_ms anyway).
local function resolve(e)
  local eid, ms_text, mint, n = items[e], items[e + 1], items[e + 2], items[e + 3]
  local ms = tonumber(ms_text)
  -- Common case first: every identifier known, all of one customer. Nothing merges or links.
  -- Identifier keys (and idmap, which merge() keeps in step) name canonical customers only: a merge
  -- re-points every identifier of the loser before it becomes an alias. So no canonical() lookup unless
  -- this batch already knows c as an alias.
  local cid = nil
  for j = e + 4, e + 2 + 2 * n, 2 do
    local c = idmap[items[j]]
    if not c then return resolve_general(e, eid, ms, ms_text, mint, n) end
    if alias[c] then c = canonical(c) end
    if cid == nil then
      cid = c
    elseif c ~= cid then
      return resolve_general(e, eid, ms, ms_text, mint, n)
    end
  end
  local fs = FS[cid]
  if fs == nil then return cid, false, '', true end
  if ms < fs then
    FS[cid], FST[cid] = ms, ms_text
    call('HSET', CUST .. cid, 'first_seen_ms', ms_text)
  end
  return cid, false, '', false
end

-- ---- journey store (core/journey.py) ---------------------------------------------------------
-- Summary field names, made once per batch.
local CHF, DEPTF, STAGEF, STAGEMSF, STAGEIDF = {}, {}, {}, {}, {}
local function name(memo, prefix, v)
  local f = memo[v]
  if not f then f = prefix .. v; memo[v] = f end
  return f
end

local function facts_of(tp)
  local j = tp.journey or {}
  local nps = ''
  if tp.nps ~= nil then nps = tostring(tp.nps) end
  local dir = 'in'
  if tp.direction == 'outbound' then dir = 'out' end
  return tp.channel, tp.department or '', j.type or '', j.stage or '', nps, dir
end

-- (score, eid) later than the stored (ms, id)?
local function later(cur_ms, cur_id, score, eid)
  if not cur_ms then return true end
  local m = tonumber(cur_ms)
  if score ~= m then return score > m end
  return bytes_lt(cur_id, eid)
end

local function tally(delta, ch, dept, dir, by)
  delta.count = (delta.count or 0) + by
  delta[dir] = (delta[dir] or 0) + by
  local f = name(CHF, 'ch:', ch)
  delta[f] = (delta[f] or 0) + by
  if dept ~= '' then
    f = name(DEPTF, 'dept:', dept)
    delta[f] = (delta[f] or 0) + by
  end
end

-- Summary fields after the counters, for an event that is the latest so far (by event time, then id)
-- of the journey, of its journey type, of the events with an nps.
local function latest(set, k, cur_last_ms, cur_last_id, st_ms, st_id, nps_ms, nps_id, score, score_text, eid,
                      ch, jt, st, nps)
  if later(cur_last_ms, cur_last_id, score, eid) then
    set[k + 1], set[k + 2], set[k + 3], set[k + 4], set[k + 5], set[k + 6] =
      'last_ms', score_text, 'last_id', eid, 'last_channel', ch
    k = k + 6
  end
  if jt ~= '' and later(st_ms, st_id, score, eid) then
    set[k + 1], set[k + 2], set[k + 3], set[k + 4], set[k + 5], set[k + 6] =
      name(STAGEF, 'stage:', jt), st, name(STAGEMSF, 'stage_ms:', jt), score_text, name(STAGEIDF, 'stage_id:', jt), eid
    k = k + 6
  end
  if nps ~= '' and later(nps_ms, nps_id, score, eid) then
    set[k + 1], set[k + 2], set[k + 3], set[k + 4], set[k + 5], set[k + 6] =
      'nps', nps, 'nps_ms', score_text, 'nps_id', eid
    k = k + 6
  end
  return k
end

-- A full timeline: the oldest (by event time, then id) goes, or this event is older and is not kept.
local function add_full(c, tl, evk, sk, eid, score, score_text, ch, dept, jt, st, nps, dir)
  local cur, set, del, delta = {}, {}, {}, {}
  local function fetch(names)
    local want = {}
    for _, f in ipairs(names) do if cur[f] == nil then want[#want + 1] = f end end
    if #want == 0 then return end
    local got = call('HMGET', sk, unpack(want))
    for i, f in ipairs(want) do cur[f] = got[i] end
  end
  fetch({'truncated', 'first_ms', 'last_ms', 'last_id'})
  if cur.truncated ~= '1' then set[#set + 1] = 'truncated'; set[#set + 1] = '1' end
  local o = call('ZRANGE', tl, 0, 1, 'WITHSCORES')
  local oid, oscore = o[1], tonumber(o[2])
  if score < oscore or (score == oscore and bytes_lt(eid, oid)) then
    call('HDEL', evk, eid)
    if #set > 0 then call('HSET', sk, unpack(set)) end
    return CAPPED
  end
  local gch, gdept, _, _, _, gdir = facts_of(cjson.decode(call('HGET', evk, oid)))
  call('ZREM', tl, oid)
  call('HDEL', evk, oid)
  tally(delta, gch, gdept, gdir, -1)
  tally(delta, ch, dept, dir, 1)
  local names = {}
  for f in pairs(delta) do names[#names + 1] = f end
  if jt ~= '' then names[#names + 1] = name(STAGEMSF, 'stage_ms:', jt); names[#names + 1] = name(STAGEIDF, 'stage_id:', jt) end
  if nps ~= '' then names[#names + 1] = 'nps_ms'; names[#names + 1] = 'nps_id' end
  fetch(names)
  call('ZADD', tl, score_text, eid)
  for f, d in pairs(delta) do
    if d ~= 0 then
      local v = tonumber(cur[f] or '0') + d
      if v > 0 then
        set[#set + 1] = f
        set[#set + 1] = v
      elseif cur[f] then
        del[#del + 1] = f -- absent, not "0": the summary must not depend on what came and went
      end
    end
  end
  local k = latest(set, #set, cur.last_ms, cur.last_id, cur[STAGEMSF[jt] or ''], cur[STAGEIDF[jt] or ''],
                   cur.nps_ms, cur.nps_id, score, score_text, eid, ch, jt, st, nps)
  local first = score_text
  if o[3] and tonumber(o[4]) < score then first = o[4] end
  if cur.first_ms ~= first then set[k + 1], set[k + 2] = 'first_ms', first; k = k + 2 end
  if k > 0 then call('HSET', sk, unpack(set, 1, k)) end
  if #del > 0 then call('HDEL', sk, unpack(del)) end
  return WRITTEN
end

local Q, S = {}, {} -- argument lists reused for the summary's HMGET and HSET

-- pending: the customer's first_seen_ms is still to be settled against this event (see resolve()).
local function add(c, eid, score_text, tp, ch, dept, jt, st, nps, dir, pending)
  local evk, sk = EVH .. c .. EVT, SUH .. c .. SUT
  local score = tonumber(score_text)
  if call('HSETNX', evk, eid, tp) == 0 then
    if pending then settle(c, score, score_text) end
    return DUPLICATE
  end
  local chf = name(CHF, 'ch:', ch)
  Q[1], Q[2], Q[3], Q[4], Q[5], Q[6] = 'count', 'first_ms', 'last_ms', 'last_id', dir, chf
  local q, qdept, qst, qnps = 6, nil, nil, nil
  if dept ~= '' then q = q + 1; Q[q] = name(DEPTF, 'dept:', dept); qdept = q end
  if jt ~= '' then
    Q[q + 1], Q[q + 2] = name(STAGEMSF, 'stage_ms:', jt), name(STAGEIDF, 'stage_id:', jt)
    qst, q = q + 1, q + 2
  end
  if nps ~= '' then Q[q + 1], Q[q + 2] = 'nps_ms', 'nps_id'; qnps, q = q + 1, q + 2 end
  local cur = call('HMGET', sk, unpack(Q, 1, q))
  if pending and not (cur[2] and score >= tonumber(cur[2])) then settle(c, score, score_text) end
  local count = tonumber(cur[1] or '0')
  if count >= CAP then
    return add_full(c, TLH .. c .. TLT, evk, sk, eid, score, score_text, ch, dept, jt, st, nps, dir)
  end
  call('ZADD', TLH .. c .. TLT, score_text, eid)
  S[1], S[2], S[3], S[4], S[5], S[6] = 'count', count + 1, dir, tonumber(cur[5] or '0') + 1, chf,
    tonumber(cur[6] or '0') + 1
  local k = 6
  if qdept then S[7], S[8] = Q[qdept], tonumber(cur[qdept] or '0') + 1; k = 8 end
  local st_ms, st_id, nps_ms, nps_id = false, false, false, false
  if qst then st_ms, st_id = cur[qst], cur[qst + 1] end
  if qnps then nps_ms, nps_id = cur[qnps], cur[qnps + 1] end
  k = latest(S, k, cur[3], cur[4], st_ms, st_id, nps_ms, nps_id, score, score_text, eid, ch, jt, st, nps)
  if not cur[1] then S[k + 1], S[k + 2] = 'v', '1'; k = k + 2 end -- a new summary (v is never removed)
  if not cur[2] or score < tonumber(cur[2]) then S[k + 1], S[k + 2] = 'first_ms', score_text; k = k + 2 end
  call('HSET', sk, unpack(S, 1, k))
  return WRITTEN
end

local M = {} -- the masks' HMGET arguments, reused

local function put_masks(c, e, n)
  local mk = MAH .. c .. MAT
  for j = 1, n do M[j] = items[e + 2 + 2 * j] end
  local got = call('HMGET', mk, unpack(M, 1, n))
  local set = nil
  for j = 1, n do
    local m = items[e + 3 + 2 * j]
    if got[j] ~= m then
      set = set or {}
      set[#set + 1] = M[j]
      set[#set + 1] = m
    end
  end
  if set then call('HSET', mk, unpack(set)) end
end

-- Fold every customer merged into c whose journey still exists (its own keys), then drop its keys.
-- Runs right after an event merged into c, so no journey of a merged-away customer outlives the batch.
local function fold(c)
  local merged = call('SMEMBERS', ALIASES .. c)
  table.sort(merged, bytes_lt)
  local cmask = MAH .. c .. MAT
  for _, l in ipairs(merged) do
    local ltl, lev, lsum, lmask = TLH .. l .. TLT, EVH .. l .. EVT, SUH .. l .. SUT, MAH .. l .. MAT
    if call('EXISTS', ltl, lmask) > 0 then
      local its = call('ZRANGE', ltl, 0, -1, 'WITHSCORES')
      for x = 1, #its, 2 do
        local tp = call('HGET', lev, its[x])
        local ch, dept, jt, st, nps, dir = facts_of(cjson.decode(tp))
        add(c, its[x], its[x + 1], tp, ch, dept, jt, st, nps, dir, false)
      end
      local masks = call('HGETALL', lmask)
      if #masks > 0 then chunked('HSET', cmask, masks) end
      if call('HGET', lsum, 'truncated') then call('HSET', SUH .. c .. SUT, 'truncated', '1') end
      call('DEL', ltl, lev, lsum, lmask)
    end
  end
end

-- ---- per event, in arrival order ----------------------------------------------------------------
local out, touched, k = {}, {}, 0
for x, e in ipairs(ev) do
  local eid = items[e]
  local cid, merged, extra, pending
  local stored = recorded[eid]
  if stored then
    -- Redelivered after it merged or conflicted: the same outcome again, for its (current) survivor.
    cid = canonical(cjson.decode(stored)[1])
    merged, extra, pending = false, stored, false
  else
    cid, merged, extra, pending = resolve(e)
  end
  if merged then fold(cid) end
  local n = items[e + 3]
  put_masks(cid, e, n)
  local f = e + 4 + 2 * n -- the six facts
  out[k + 1] = cid
  out[k + 2] = add(cid, eid, items[e + 1], ARGV[36 + x], items[f], items[f + 1], items[f + 2], items[f + 3],
                   items[f + 4], items[f + 5], pending)
  out[k + 3] = extra
  k = k + 3
  if not touched[cid] then touched[cid] = true; touched[#touched + 1] = cid end
end

-- Every key of a written journey lives at least TTL after the write. Re-armed (to TTL + SLACK) only when
-- under TTL: a customer written every batch costs one PTTL here, not four PEXPIREs.
-- The customer's identity graph (identifier keys, alias keys, its sets and hash) is re-armed with it, to
-- the same TTL, and whenever it changed: an identifier never expires while its customer's journey lives
-- (no false split), nor the customer hash while an identifier names it. Journey first, the hash last, so
-- the expiry times only grow in that order; a newly linked identifier alone takes the hash's expiry time
-- (docs/stitcher.md, "Retention").
local function rearm_graph(c, ms)
  for _, k in ipairs(call('SMEMBERS', IDS .. c)) do call('PEXPIRE', ID .. k, ms) end
  local merged = call('SMEMBERS', ALIASES .. c)
  if #merged > 0 then
    for _, l in ipairs(merged) do call('PEXPIRE', ALIAS .. l, ms) end
    call('PEXPIRE', ALIASES .. c, ms)
  end
  call('PEXPIRE', IDS .. c, ms)
  call('PEXPIRE', CUST .. c, ms)
end

for _, c in ipairs(touched) do
  if not alias[c] then -- merged away later in this batch: its keys are gone
    local tl = TLH .. c .. TLT
    local at = -1 -- the customer hash's expiry time (ms), when newly linked identifiers can just take it
    if not regraph[c] and fresh[c] and call('PTTL', tl) >= TTL then at = call('PEXPIRETIME', CUST .. c) end
    if at > 0 then
      for _, k in ipairs(fresh[c]) do call('PEXPIREAT', ID .. k, at) end
    elseif regraph[c] or fresh[c] or call('PTTL', tl) < TTL then
      local ms = TTL + SLACK
      call('PEXPIRE', tl, ms)
      call('PEXPIRE', EVH .. c .. EVT, ms)
      call('PEXPIRE', SUH .. c .. SUT, ms)
      call('PEXPIRE', MAH .. c .. MAT, ms)
      rearm_graph(c, ms)
    end
  end
end
return out
