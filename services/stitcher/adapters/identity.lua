-- Identity resolution of one batch (core/identity.py), in arrival order, atomically: every key it touches
-- lives in the identity graph's hash slot ({<p>:idg}, services/common/keys.py), so the graph is one
-- consistent, serialised whole on a single Redis and on a cluster alike (docs/stitcher.md, "On Redis
-- Cluster"). The journeys are written afterwards by journey.lua, in each customer's own slot.
--
-- Called through script_calls.py IdentityCall, whose fields are named as below.
-- KEYS[1..NI] identifier_keys: the batch's identifier keys, each once, in order of first appearance
-- KEYS[NI+1..] outcome_keys: the merge-outcome key of each event, in batch order
-- Every other key (customer hashes, identifier sets, aliases, evidence, blocks) is built from the heads
-- below and is in the same slot; Redis Cluster refuses the script otherwise.
-- ARGV[1] id_head: identifier key head
-- ARGV[2] customer_head: customer hash head
-- ARGV[3] customer_ids_head: a customer's identifier set head
-- ARGV[4] alias_head: alias key head (merged-away customer -> survivor)
-- ARGV[5] aliases_of_head: head of the set of customers merged into one
-- ARGV[6] outcome_head: merge-outcome key head
-- ARGV[7] now_ms: created_ms of new customers
-- ARGV[8] outcome_ttl_ms: TTL of a merge-outcome key
-- ARGV[9] graph_keep_ms: a customer's graph keys are re-armed when their TTL is under it
-- ARGV[10] graph_ttl_ms: ... to this TTL
-- ARGV[11] identifier_key_count: NI
-- ARGV[12] max_alias_hops: most alias hops followed (services/common/limits.py)
-- ARGV[13..28] type_limits: (identifier type, most of that type per customer) x 8, in contract order
-- ARGV[29] batch: one MessagePack array, per event [event_id, occurred_ms (string: it goes back to Redis
--       verbatim), mint, n, id_key 1 .. id_key n] flattened into one list (cmsgpack.unpack is C and makes
--       no per-event table)
-- ARGV[30] evidence_head: head of a customer's identity-evidence hash
-- ARGV[31] blocked_head: head of the set of customers a split keeps a customer from merging with
-- Returns {per event: customer_id, '' or the outcome JSON [customer_id, [conflict types], [[kind,
-- survivor, loser, [types], limit|false], ...]] (the text the merge-outcome key keeps, so a replay returns
-- it without re-encoding)}, then {customer, its survivor now, ...} for every customer named above
-- (returned or merged away) that is an alias when the script ends: journey.lua writes there.
--
-- Cost: in Redis' Lua every new table and string costs about as much as a simple command, so the common
-- case (a returning customer, nothing merged) makes per distinct customer one HMGET (first seen) and one
-- PTTL (retention), and nothing per event; identifier and outcome keys of the batch are read with one
-- MGET each and mirrored in Lua tables that every write here updates. Merges, conflicts and new
-- identifiers take the general path.
local ID, CUST, IDS, ALIAS, ALIASES, OUT = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local NOW, OUT_TTL, KEEP, GRAPH_TTL, NI = ARGV[7], ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10]),
  tonumber(ARGV[11])
local HOPS = tonumber(ARGV[12])
local EV, BLOCK = ARGV[30], ARGV[31]
local TYPES, LIMIT = {}, {}
for x = 0, 7 do
  local t = ARGV[13 + 2 * x]
  TYPES[#TYPES + 1] = t
  LIMIT[t] = tonumber(ARGV[14 + 2 * x])
end
local CHUNK = 1000 -- unpack() has a stack limit
local unpack, call, tonumber, byte, min = unpack, redis.call, tonumber, string.byte, math.min

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

-- ---- the batch -------------------------------------------------------------------------------
-- Events stay in the decoded flat list; ev[i] is where event i starts.
local items = cmsgpack.unpack(ARGV[29])
local ev, eids, idnames, seen = {}, {}, {}, {}
do
  local i, nitems = 1, #items
  while i <= nitems do
    local n = items[i + 3]
    ev[#ev + 1], eids[#eids + 1] = i, items[i]
    for j = i + 4, i + 3 + n do
      local k = items[j]
      if not seen[k] then seen[k] = true; idnames[#idnames + 1] = k end
    end
    i = i + 4 + n
  end
end
if #idnames ~= NI then return redis.error_reply('identity.lua: KEYS do not match the batch') end

-- ---- identity graph (core/identity.py) -------------------------------------------------------
-- Mirrors of this batch's reads: idmap id_key -> customer (false: unseen); FS/FST customer -> first seen
-- ms as number/text (false: no customer hash); NC customer -> {type -> identifier count} (read only when
-- a rule needs counts); alias customer -> survivor (false: none); recorded event_id -> outcome JSON.
local idmap, recorded = {}, {}
for i = 1, NI, CHUNK do
  local got = call('MGET', unpack(KEYS, i, min(i + CHUNK - 1, NI)))
  for j = 1, #got do idmap[idnames[i + j - 1]] = got[j] end
end
for i = 1, #eids, CHUNK do
  local got = call('MGET', unpack(KEYS, NI + i, NI + min(i + CHUNK - 1, #eids)))
  for j = 1, #got do recorded[eids[i + j - 1]] = got[j] end
end
local function type_of(k) return string.match(k, '^([^:]+):') end
local FS, FST, NC, alias = {}, {}, {}, {}
-- Customers whose identity graph changed in this batch (new customer, merge: MSET leaves keys without a
-- TTL): their whole graph is re-armed at the end. fresh: customer -> identifier keys
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
  for _ = 1, HOPS do
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
  -- The loser's evidence (why each of its identifiers is its) and split blocks go with its identifiers.
  local ev = call('HGETALL', EV .. loser)
  if #ev > 0 then chunked('HSET', EV .. survivor, ev) end
  local bl = call('SMEMBERS', BLOCK .. loser) -- commands of the documented ACL line only (docs/security.md)
  if #bl > 0 then chunked('SADD', BLOCK .. survivor, bl) end
  call('DEL', ALIASES .. loser, IDS .. loser, CUST .. loser, EV .. loser, BLOCK .. loser)
  regraph[survivor] = true
  FS[loser], FST[loser], NC[loser] = false, false, nil
end

-- An event of c at ms: first_seen_ms moves back if it is older (what every resolution ends with).
-- A customer hash that is gone (never: identifier keys outlive nothing they name) settles nothing.
local function settle(c, ms, ms_text)
  local fs = first_seen(c)
  if fs and ms < fs then
    FS[c], FST[c] = ms, ms_text
    call('HSET', CUST .. c, 'first_seen_ms', ms_text)
  end
end

-- Two customers a split separated (services/stitcher/split.py): merged again only once an admin allows it.
-- Asked on the merge path only.
local function member(set, x)
  for _, m in ipairs(call('SMEMBERS', set)) do if m == x then return true end end
  return false
end
local function blocked(a, b) return member(BLOCK .. a, b) or member(BLOCK .. b, a) end

-- The general case: several customers, unseen identifiers or a new customer.
local function resolve_general(e, eid, ms, ms_text, mint, n)
  local linked, order, unseen = {}, {}, {}
  for j = e + 4, e + 3 + n do
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
  local cid, rule, losers = nil, 'link', {}
  if #order == 0 then
    first_seen(mint)
    cid = canonical(mint)
    if not first_seen(cid) then
      local n = {}
      for _, t in ipairs(TYPES) do n[t] = 0 end
      FS[cid], FST[cid], NC[cid] = ms, ms_text, n
      dirty.first_seen_ms, dirty.created_ms = ms_text, NOW
      regraph[cid] = true
      rule = 'mint'
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
      if blocked(cid, other) then
        over = 'split'
      else
        for _, t in ipairs(TYPES) do
          if sn[t] + on[t] > LIMIT[t] then over = t; break end
        end
      end
      if over then
        outcomes[#outcomes + 1] = {'conflict', cid, other, types, over}
        conflicts[#conflicts + 1] = over
      else
        merge(other, cid, dirty)
        outcomes[#outcomes + 1] = {'merge', cid, other, types, false}
        merged = true
        losers[#losers + 1] = other
      end
    end
  end
  -- Evidence: the event's identifiers already of the customer (after the merges), the ones it links.
  local via = {}
  if #order > 0 then
    for j = e + 4, e + 3 + n do
      local c = idmap[items[j]]
      if c and canonical(c) == cid then via[#via + 1] = items[j] end
    end
  end
  local link = {}
  if #unseen > 0 then
    local sn, kv = counts(cid, unseen), {}
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
  if merged then rule = 'merge' end
  if merged or rule == 'mint' or #link > 0 then
    call('HSET', EV .. cid, eid, rule .. '|' .. ms_text .. '|' .. NOW .. '|' .. table.concat(via, ',') .. '|'
         .. table.concat(link, ',') .. '|' .. table.concat(losers, ','))
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


-- Returns customer id, whether anything merged, and '' or the outcome JSON.
local function resolve(e)
  local eid, ms_text, mint, n = items[e], items[e + 1], items[e + 2], items[e + 3]
  local ms = tonumber(ms_text)
  -- Common case first: every identifier known, all of one customer. Nothing merges or links.
  -- Identifier keys (and idmap, which merge() keeps in step) name canonical customers only: a merge
  -- re-points every identifier of the loser before it becomes an alias. So no canonical() lookup unless
  -- this batch already knows c as an alias.
  local cid = nil
  for j = e + 4, e + 3 + n do
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
  if fs == nil then -- the common path needs no counts: one HGET, not first_seen()'s HMGET
    local t = call('HGET', CUST .. cid, 'first_seen_ms')
    fs = tonumber(t) or false
    FS[cid], FST[cid] = fs, t
    if fs and alias[cid] == nil then alias[cid] = false end
  end
  if fs and ms < fs then
    FS[cid], FST[cid] = ms, ms_text
    call('HSET', CUST .. cid, 'first_seen_ms', ms_text)
  end
  return cid, false, ''
end


-- ---- per event, in arrival order ----------------------------------------------------------------
local out, named, k = {}, {}, 0
local function name_it(c) if not named[c] then named[c] = true; named[#named + 1] = c end end
for _, e in ipairs(ev) do
  local eid = items[e]
  local cid, extra, _merged
  local stored = recorded[eid]
  if stored then
    -- Redelivered after it merged or conflicted: the same outcome again, for its (current) survivor.
    local o = cjson.decode(stored)
    cid, extra = canonical(o[1]), stored
    first_seen(cid)
    for _, m in ipairs(o[3] or {}) do if m[1] == 'merge' then name_it(m[3]) end end
  else
    cid, _merged, extra = resolve(e)
    if extra ~= '' then
      for _, m in ipairs(cjson.decode(extra)[3] or {}) do if m[1] == 'merge' then name_it(m[3]) end end
    end
  end
  out[k + 1], out[k + 2] = cid, extra
  k = k + 2
  name_it(cid)
end

-- ---- retention ----------------------------------------------------------------------------------
-- A customer's graph (identifier keys, alias keys, its sets and hash) lives at least KEEP after a batch
-- names it, re-armed to GRAPH_TTL only when under KEEP or when it changed (a merge or a new customer:
-- MSET/HSET leave keys without a TTL). journey.lua keeps the journey for at most KEEP after a write, so
-- an identifier never expires while its customer's journey lives (no false split), nor the hash while an
-- identifier names it. Newly linked identifiers alone take the hash's expiry time (docs/stitcher.md,
-- "Retention").
local function rearm_graph(c)
  for _, x in ipairs(call('SMEMBERS', IDS .. c)) do call('PEXPIRE', ID .. x, GRAPH_TTL) end
  local merged = call('SMEMBERS', ALIASES .. c)
  if #merged > 0 then
    for _, l in ipairs(merged) do call('PEXPIRE', ALIAS .. l, GRAPH_TTL) end
    call('PEXPIRE', ALIASES .. c, GRAPH_TTL)
  end
  call('PEXPIRE', IDS .. c, GRAPH_TTL)
  call('PEXPIRE', EV .. c, GRAPH_TTL)
  call('PEXPIRE', BLOCK .. c, GRAPH_TTL)
  call('PEXPIRE', CUST .. c, GRAPH_TTL)
end

local finals = {}
for _, c in ipairs(named) do
  local now = canonical(c)
  if now ~= c then
    finals[#finals + 1] = c
    finals[#finals + 1] = now
  elseif FS[c] then -- a live customer (merged-away ones have no hash)
    local left = call('PTTL', CUST .. c)
    if regraph[c] or left < KEEP then
      rearm_graph(c)
    elseif fresh[c] then
      local at = call('PEXPIRETIME', CUST .. c)
      for _, x in ipairs(fresh[c]) do call('PEXPIREAT', ID .. x, at) end
      call('PEXPIREAT', EV .. c, at) -- a link wrote its evidence
    end
  end
end
return {out, finals}
