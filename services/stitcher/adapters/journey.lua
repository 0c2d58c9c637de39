-- Write touchpoints into customers' journeys (core/journey.py): per customer, first the touchpoints folded
-- in from customers merged into it (journey_take.lua read them; journey_drop.lua removes them after), then
-- the batch's events in arrival order. Every key of a customer is in its own hash slot ({<p>:c:<cid>}):
-- on a single Redis one call takes the whole batch, on a cluster the adapter makes one call per slot.
-- identity.lua resolved the customers first (core/model.py StitchModel drives the two Python models in
-- exactly this order; tests/integration/stitcher/test_lua_matches_model.py holds them together).
--
-- Called through script_calls.py JourneyCall, whose fields are named as below.
-- KEYS[4c+1..4c+4] customer_keys: per customer c, its timeline ZSET, touchpoints HASH, summary HASH,
--       masks HASH
-- ARGV[1] max_touchpoints: most touchpoints a timeline keeps
-- ARGV[2] keep_ms: a journey's keys are re-armed when their TTL is under it
-- ARGV[3] ttl_ms: ... to this TTL
-- ARGV[4] work: one MessagePack array, per customer (in KEYS order) [truncated folded in (0|1), nf, nm,
--       ne, then nf folded touchpoints (event_id, occurred_ms, channel, department, journey type, stage,
--       nps, in|out), nm masks (id_key, masked value), ne events (event_id, occurred_ms, n, id_key 1,
--       mask 1, ..., the six facts)] flattened into one list ('' = absent)
-- ARGV[5..] touchpoints: each touchpoint's JSON (folded and events, in that order) as its own argument
--       (each becomes a Lua string once; one blob cut with string.sub hashed every byte twice).
-- Returns per event, in order: 1 written, 0 duplicate, 2 capped.
--
-- Cost: in Redis' Lua every new table and string costs about as much as a simple command, and every write
-- is also fed to the AOF; so the common case (timeline not full) allocates next to nothing and makes per
-- event: HMGET masks, HSETNX touchpoint (dedup and store in one), HMGET summary, ZADD timeline, one HSET
-- of the summary; per customer one PTTL.
local CAP, KEEP, TTL = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local WRITTEN, DUPLICATE, CAPPED = 1, 0, 2
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
local function add_full(tl, evk, sk, eid, score, score_text, ch, dept, jt, st, nps, dir)
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

local function add(tl, evk, sk, eid, score_text, tp, ch, dept, jt, st, nps, dir)
  local score = tonumber(score_text)
  if call('HSETNX', evk, eid, tp) == 0 then return DUPLICATE end
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
  local count = tonumber(cur[1] or '0')
  if count >= CAP then
    return add_full(tl, evk, sk, eid, score, score_text, ch, dept, jt, st, nps, dir)
  end
  call('ZADD', tl, score_text, eid)
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

local function put_masks(mk, items, at, n)
  for j = 1, n do M[j] = items[at + 2 * j - 2] end
  local got = call('HMGET', mk, unpack(M, 1, n))
  local set = nil
  for j = 1, n do
    local m = items[at + 2 * j - 1]
    if got[j] ~= m then
      set = set or {}
      set[#set + 1] = M[j]
      set[#set + 1] = m
    end
  end
  if set then call('HSET', mk, unpack(set)) end
end

-- ---- per customer ---------------------------------------------------------------------------------
local items = cmsgpack.unpack(ARGV[4])
local out, i, a = {}, 1, 5 -- i: next item, a: next touchpoint argument
for c = 1, #KEYS, 4 do
  local tl, evk, sk, mk = KEYS[c], KEYS[c + 1], KEYS[c + 2], KEYS[c + 3]
  local truncated, nf, nm, ne = items[i], items[i + 1], items[i + 2], items[i + 3]
  i = i + 4
  for _ = 1, nf do
    add(tl, evk, sk, items[i], items[i + 1], ARGV[a], items[i + 2], items[i + 3], items[i + 4], items[i + 5],
        items[i + 6], items[i + 7])
    i, a = i + 8, a + 1
  end
  if nm > 0 then put_masks(mk, items, i, nm); i = i + 2 * nm end
  if truncated == 1 then call('HSET', sk, 'truncated', '1') end
  for _ = 1, ne do
    local n = items[i + 2]
    if n > 0 then put_masks(mk, items, i + 3, n) end
    local f = i + 3 + 2 * n -- the six facts
    out[#out + 1] = add(tl, evk, sk, items[i], items[i + 1], ARGV[a], items[f], items[f + 1], items[f + 2],
                        items[f + 3], items[f + 4], items[f + 5])
    i, a = f + 6, a + 1
  end
  -- Every key of a written journey lives at least KEEP after the write; re-armed (to TTL) only when under
  -- KEEP, so a customer written every batch costs one PTTL here, not four PEXPIREs. identity.lua keeps the
  -- customer's graph longer than this (docs/stitcher.md, "Retention").
  if call('PTTL', tl) < KEEP then
    call('PEXPIRE', tl, TTL)
    call('PEXPIRE', evk, TTL)
    call('PEXPIRE', sk, TTL)
    call('PEXPIRE', mk, TTL)
  end
end
return out
