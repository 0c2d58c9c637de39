#!lua
-- HTTP API lookups, step 1 of 2: resolve to the surviving customer inside the identity graph's hash slot.
-- Every key read is in KEYS[1]'s slot ({<p>:idg}, services/common/keys.py); the `#!lua` line makes Redis
-- Cluster refuse the script should that ever change. Called through services/api/script_calls.py
-- ResolveCall, whose fields are named as below.
-- KEYS[1] start_key: the identifier key (id_key -> customer id), or the alias key of ARGV[1] when a
--         customer id is asked for
-- ARGV[1] customer_id: the customer id asked for ('' with an identifier key)
-- ARGV[2] max_alias_hops: most alias hops followed (services/common/limits.py)
-- ARGV[3] alias_template: the alias key ('@CID@' stands for the id)
-- ARGV[4] aliases_of_template: the aliases-of key ('@CID@' stands for the id)
-- Returns {} when unknown (or on a cycle or a chain too long), else {customer id, ids merged into it}.
local function key(tpl, cid) return (string.gsub(tpl, '@CID@', cid)) end

local cid = ARGV[1]
if cid == '' then
  cid = redis.call('GET', KEYS[1])
  if not cid then return {} end
end
for _ = 1, tonumber(ARGV[2]) do
  local survivor = redis.call('GET', key(ARGV[3], cid))
  if not survivor or survivor == cid then break end
  cid = survivor
end
if redis.call('GET', key(ARGV[3], cid)) then return {} end  -- a cycle or a chain too long: unknown
return {cid, redis.call('SMEMBERS', key(ARGV[4], cid))}
