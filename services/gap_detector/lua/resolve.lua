#!lua
-- Resolve the customers of a batch to their survivors (read-only; the identity graph is the stitcher's).
-- Called through services/gap_detector/script_calls.py ResolveCall, whose fields are named as below.
-- KEYS[1] graph_key: a key of the identity graph's hash slot ({<p>:idg}): every key read is in that slot
-- ARGV[1] alias_template: the alias key ('@CID@' for the customer id, from Keys)
-- ARGV[2] aliases_of_template: the aliases-of key ('@CID@' for the customer id)
-- ARGV[3] asks: MessagePack list of {customer id as the record carries it, an extra loser ('' for none)}
-- ARGV[4] max_alias_hops: most alias hops followed (services/common/limits.py)
-- ARGV[5] max_losers: most merged-away customers gathered per ask (services/common/limits.py)
-- Returns per ask {survivor, {merged-away customers to fold into it, whether or not folded yet}}: the
-- caller reads their detector state in their own slots (a folded one has none left).
local function key(tpl, cid) return (string.gsub(tpl, '@CID@', cid)) end
local HOPS, MAX_LOSERS = tonumber(ARGV[4]), tonumber(ARGV[5])

local function resolve(cid)
  local c = cid
  for _ = 1, HOPS do
    local a = redis.call('GET', key(ARGV[1], c))
    if not a then return c end
    c = a
  end
  return c
end

local out = {}
for _, ask in ipairs(cmsgpack.unpack(ARGV[3])) do
  local asked, extra = ask[1], ask[2]
  local survivor = resolve(asked)
  local losers, seen, queue = {}, {[survivor] = true}, redis.call('SMEMBERS', key(ARGV[2], survivor))
  if extra ~= '' then table.insert(queue, extra) end
  if asked ~= survivor then table.insert(queue, asked) end
  local n = 0
  while #queue > 0 and n < MAX_LOSERS do
    local l = table.remove(queue)
    n = n + 1
    if not seen[l] then
      seen[l] = true
      table.insert(losers, l)
      for _, m in ipairs(redis.call('SMEMBERS', key(ARGV[2], l))) do table.insert(queue, m) end
    end
  end
  table.insert(out, {survivor, losers})
end
return out
