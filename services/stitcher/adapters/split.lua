-- Split a customer's identity graph in two, or join the two again (undo), atomically in the identity
-- graph's slot ({<p>:idg}); the plan is made by core/split.py (adapters/split_store.py orchestrates, then
-- moves the touchpoints in the journeys' own slots). Safe to repeat: the split record says what is done.
--
-- KEYS[1] split_record: the split record (Keys.split_record)
-- ARGV[1] id_head: identifier keys' head
-- ARGV[2] customer_head: customer hashes' head
-- ARGV[3] customer_ids_head: customer identifier sets' head
-- ARGV[4] alias_head: alias keys' head
-- ARGV[5] aliases_of_head: aliases-of sets' head
-- ARGV[6] evidence_head: evidence hashes' head
-- ARGV[7] blocked_head: split blocks' head
-- ARGV[8] now_ms: now
-- ARGV[9] graph_ttl_ms: the identity graph's TTL
-- ARGV[10] mode: 'split' | 'join'
-- ARGV[11] record: the split record JSON to store
-- ARGV[12] plan: (split) MessagePack map {customer, new, digest, keep = [keys], move = [keys],
--       keep_ev = [event id, text, ...], move_ev = [...], keep_fs, move_fs}
--       (join) MessagePack map {customer, new}.
-- Returns {'done'} (applied now), {'again'} (the record says it was applied already), {'changed'} (split:
-- the customer's identifiers are not those planned on: plan again), or an error reply naming the reason.
local ID, CUST, IDS, ALIAS, ALIASES, EV, BLOCK = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local NOW, TTL, MODE, RECORD = ARGV[8], tonumber(ARGV[9]), ARGV[10], ARGV[11]
local plan = cmsgpack.unpack(ARGV[12])
local call = redis.call
local C, N = plan.customer, plan.new

local function chunked(cmd, key, list)
  for i = 1, #list, 1000 do
    local part = {unpack(list, i, math.min(i + 999, #list))}
    if key then call(cmd, key, unpack(part)) else call(cmd, unpack(part)) end
  end
end

local function set_counts(c, keys)
  local n = {}
  for _, k in ipairs(keys) do
    local t = string.match(k, '^([^:]+):')
    n[t] = (n[t] or 0) + 1
  end
  local have = call('HGETALL', CUST .. c) -- not HKEYS: the documented ACL line (docs/security.md)
  local del = {}
  for i = 1, #have, 2 do
    local f = have[i]
    local t = string.match(f, '^n:(.+)$')
    if t and not n[t] then del[#del + 1] = f end
  end
  if #del > 0 then call('HDEL', CUST .. c, unpack(del)) end
  local kv = {}
  for t, v in pairs(n) do kv[#kv + 1] = 'n:' .. t; kv[#kv + 1] = v end
  if #kv > 0 then call('HSET', CUST .. c, unpack(kv)) end
end

-- Same retention rule as identity.lua's rearm_graph: the hash last.
local function rearm(c)
  for _, x in ipairs(call('SMEMBERS', IDS .. c)) do call('PEXPIRE', ID .. x, TTL) end
  for _, l in ipairs(call('SMEMBERS', ALIASES .. c)) do call('PEXPIRE', ALIAS .. l, TTL) end
  for _, k in ipairs({ALIASES .. c, IDS .. c, EV .. c, BLOCK .. c, CUST .. c}) do call('PEXPIRE', k, TTL) end
end

local stored = call('GET', KEYS[1])
local state = stored and cjson.decode(stored).state or false

if MODE == 'split' then
  if state == 'applied' then return {'again'} end
  if call('EXISTS', CUST .. C) == 0 then return redis.error_reply('SPLIT customer ' .. C .. ' is not live') end
  local ids = call('SMEMBERS', IDS .. C)
  table.sort(ids)
  if redis.sha1hex(table.concat(ids, ',')) ~= plan.digest then return {'changed'} end
  if call('EXISTS', CUST .. N) == 1 then return redis.error_reply('SPLIT customer ' .. N .. ' exists') end
  local was = call('GET', ALIAS .. N)
  if was and was ~= C then return redis.error_reply('SPLIT ' .. N .. ' is merged into another customer') end
  if was then
    call('DEL', ALIAS .. N)
    call('SREM', ALIASES .. C, N)
  end
  local kv = {}
  for _, k in ipairs(plan.move) do kv[#kv + 1] = ID .. k; kv[#kv + 1] = N end
  chunked('MSET', nil, kv)
  call('DEL', IDS .. C, EV .. C)
  chunked('SADD', IDS .. C, plan.keep)
  chunked('SADD', IDS .. N, plan.move)
  if #plan.keep_ev > 0 then chunked('HSET', EV .. C, plan.keep_ev) end
  if #plan.move_ev > 0 then chunked('HSET', EV .. N, plan.move_ev) end
  call('HSET', CUST .. C, 'first_seen_ms', tostring(plan.keep_fs))
  call('HSET', CUST .. N, 'first_seen_ms', tostring(plan.move_fs), 'created_ms', NOW)
  set_counts(C, plan.keep)
  set_counts(N, plan.move)
  call('SADD', BLOCK .. C, N)
  call('SADD', BLOCK .. N, C)
  call('SET', KEYS[1], RECORD, 'PX', TTL)
  rearm(N)
  rearm(C)
  return {'done'}
end

if MODE == 'join' then
  if state ~= 'applied' then return {'again'} end
  if call('EXISTS', CUST .. C) == 0 then return redis.error_reply('SPLIT customer ' .. C .. ' is not live') end
  if N ~= C and call('EXISTS', CUST .. N) == 1 then
    -- N back into C as identity.lua merges, whatever the limits (it was one customer before the split).
    local ks = call('SMEMBERS', IDS .. N)
    local kv = {}
    for _, k in ipairs(ks) do kv[#kv + 1] = ID .. k; kv[#kv + 1] = C end
    chunked('MSET', nil, kv)
    if #ks > 0 then chunked('SADD', IDS .. C, ks) end
    local ev = call('HGETALL', EV .. N)
    if #ev > 0 then chunked('HSET', EV .. C, ev) end
    local fs_n, fs_c = tonumber(call('HGET', CUST .. N, 'first_seen_ms')), tonumber(call('HGET', CUST .. C, 'first_seen_ms'))
    if fs_n and fs_c and fs_n < fs_c then call('HSET', CUST .. C, 'first_seen_ms', tostring(fs_n)) end
    local moved = call('SMEMBERS', ALIASES .. N)
    moved[#moved + 1] = N
    kv = {}
    for _, c in ipairs(moved) do kv[#kv + 1] = ALIAS .. c; kv[#kv + 1] = C end
    chunked('MSET', nil, kv)
    chunked('SADD', ALIASES .. C, moved)
    call('SREM', BLOCK .. N, C)
    local bl = call('SMEMBERS', BLOCK .. N)
    if #bl > 0 then chunked('SADD', BLOCK .. C, bl) end
    call('DEL', ALIASES .. N, IDS .. N, CUST .. N, EV .. N, BLOCK .. N)
  end
  call('SREM', BLOCK .. C, N)
  set_counts(C, call('SMEMBERS', IDS .. C))
  call('SET', KEYS[1], RECORD, 'PX', TTL)
  rearm(C)
  return {'done'}
end
return redis.error_reply('SPLIT unknown mode ' .. tostring(MODE))
