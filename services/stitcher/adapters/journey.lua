-- Journey store writes for a batch of stitched events (one script call per batch).
-- Mirrors services/stitcher/core/journey.py step by step; key names come from Keys via ARGV.
-- ARGV: 1/2 timeline head/tail, 3/4 touchpoints head/tail, 5/6 summary head/tail, 7/8 masked head/tail,
--       9 alias head, 10 aliases-of head, 11 max touchpoints, 12 retention ms,
--       13 the batch as one JSON array of [customer_id, event_id, occurred_ms (string), touchpoint json
--       (string), channel, department, journey type, stage, nps, in|out, [[id_key, masked], ...]]
--       ('' = absent; one argument instead of thousands).
-- Returns one status per event: 1 written, 0 duplicate, 2 not kept (older than a full timeline).
local TLH, TLT, EVH, EVT, SUH, SUT, MAH, MAT = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local ALIAS, ALIASES = ARGV[9], ARGV[10]
local CAP, TTL = tonumber(ARGV[11]), ARGV[12]

local function bytes_lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function keys_of(c) return TLH .. c .. TLT, EVH .. c .. EVT, SUH .. c .. SUT, MAH .. c .. MAT end

local function bump(sk, field, by)
  if redis.call('HINCRBY', sk, field, by) <= 0 then redis.call('HDEL', sk, field) end
end

local function count_facts(sk, f, by)
  bump(sk, 'count', by)
  bump(sk, f.dir, by)
  bump(sk, 'ch:' .. f.ch, by)
  if f.dept ~= '' then bump(sk, 'dept:' .. f.dept, by) end
end

local function facts_of(tp)
  local j = tp.journey or {}
  local nps = ''
  if tp.nps ~= nil then nps = tostring(tp.nps) end
  local dir = 'in'
  if tp.direction == 'outbound' then dir = 'out' end
  return {ch = tp.channel, dept = tp.department or '', jt = j.type or '', st = j.stage or '', nps = nps, dir = dir}
end

-- (score, eid) later than the stored (ms_field, id_field)?
local function later(cur_ms, cur_id, score, eid)
  if not cur_ms then return true end
  local m = tonumber(cur_ms)
  if score ~= m then return score > m end
  return bytes_lt(cur_id, eid)
end

local function add(c, eid, score_text, tp, f)
  local tl, ev, sk = keys_of(c)
  if redis.call('HEXISTS', ev, eid) == 1 then return 0 end
  local score = tonumber(score_text)
  local dropped = false
  if redis.call('ZCARD', tl) >= CAP then
    local oldest = redis.call('ZRANGE', tl, 0, 0, 'WITHSCORES')
    redis.call('HSET', sk, 'truncated', '1')
    local oscore = tonumber(oldest[2])
    if score < oscore or (score == oscore and bytes_lt(eid, oldest[1])) then return 2 end
    redis.call('ZREM', tl, oldest[1])
    count_facts(sk, facts_of(cjson.decode(redis.call('HGET', ev, oldest[1]))), -1)
    redis.call('HDEL', ev, oldest[1])
    dropped = true
  end
  redis.call('ZADD', tl, score_text, eid)
  redis.call('HSET', ev, eid, tp)
  count_facts(sk, f, 1)
  local cur = redis.call('HMGET', sk, 'last_ms', 'last_id', 'first_ms', 'nps_ms', 'nps_id')
  if later(cur[1], cur[2], score, eid) then
    redis.call('HSET', sk, 'last_ms', score_text, 'last_id', eid, 'last_channel', f.ch)
  end
  if f.jt ~= '' then
    local st = redis.call('HMGET', sk, 'stage_ms:' .. f.jt, 'stage_id:' .. f.jt)
    if later(st[1], st[2], score, eid) then
      redis.call('HSET', sk, 'stage:' .. f.jt, f.st, 'stage_ms:' .. f.jt, score_text, 'stage_id:' .. f.jt, eid)
    end
  end
  if f.nps ~= '' and later(cur[4], cur[5], score, eid) then
    redis.call('HSET', sk, 'nps', f.nps, 'nps_ms', score_text, 'nps_id', eid)
  end
  redis.call('HSET', sk, 'v', '1')
  if dropped then
    redis.call('HSET', sk, 'first_ms', redis.call('ZRANGE', tl, 0, 0, 'WITHSCORES')[2])
  elseif not cur[3] or score < tonumber(cur[3]) then
    redis.call('HSET', sk, 'first_ms', score_text)
  end
  return 1
end

-- Fold every customer merged into c whose journey still exists (its own keys), then drop its keys.
local function fold(c)
  local merged = redis.call('SMEMBERS', ALIASES .. c)
  table.sort(merged, bytes_lt)
  local _, _, csum, cmask = keys_of(c)
  for _, l in ipairs(merged) do
    local ltl, lev, lsum, lmask = keys_of(l)
    if redis.call('EXISTS', ltl, lmask) > 0 then
      local items = redis.call('ZRANGE', ltl, 0, -1, 'WITHSCORES')
      for x = 1, #items, 2 do
        local tp = redis.call('HGET', lev, items[x])
        add(c, items[x], items[x + 1], tp, facts_of(cjson.decode(tp)))
      end
      local masks = redis.call('HGETALL', lmask)
      for x = 1, #masks, 2 do redis.call('HSET', cmask, masks[x], masks[x + 1]) end
      if redis.call('HGET', lsum, 'truncated') then redis.call('HSET', csum, 'truncated', '1') end
      redis.call('DEL', ltl, lev, lsum, lmask)
    end
  end
end

local out, folded = {}, {}
for _, e in ipairs(cjson.decode(ARGV[13])) do
  local c = e[1]
  -- Events in flight during a merge are keyed by the loser: the alias (chains compressed) names the survivor.
  local survivor = redis.call('GET', ALIAS .. c)
  if survivor then c = survivor end
  if not folded[c] then fold(c); folded[c] = true end
  local _, _, _, mk = keys_of(c)
  for _, pair in ipairs(e[11]) do redis.call('HSET', mk, pair[1], pair[2]) end
  local f = {ch = e[5], dept = e[6], jt = e[7], st = e[8], nps = e[9], dir = e[10]}
  out[#out + 1] = add(c, e[2], e[3], e[4], f)
end
for c in pairs(folded) do
  local tl, ev, sk, mk = keys_of(c)
  redis.call('PEXPIRE', tl, TTL)
  redis.call('PEXPIRE', ev, TTL)
  redis.call('PEXPIRE', sk, TTL)
  redis.call('PEXPIRE', mk, TTL)
end
return out
