#!lua
-- Resolve the customers of a batch to their survivors (read-only; the identity graph is the stitcher's).
-- KEYS[1] a key of the identity graph's hash slot ({<p>:idg}): every key read here is in that slot.
-- ARGV[1] alias template, ARGV[2] aliases_of template ('@CID@' for the customer id, from Keys).
-- ARGV[3] MessagePack list of {customer id as the record carries it, an extra loser ('' for none)}.
-- Returns per ask {survivor, {merged-away customers to fold into it, whether or not folded yet}}: the
-- caller reads their detector state in their own slots (a folded one has none left).
local function key(tpl, cid) return (string.gsub(tpl, '@CID@', cid)) end

local function resolve(cid)
  local c = cid
  for _ = 1, 16 do
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
  while #queue > 0 and n < 64 do
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
