-- Which of these customers are merged away now, and into whom: the alias check a stitcher makes after
-- writing journeys, so a touchpoint written into a customer that another worker merged away meanwhile is
-- folded into the survivor (docs/stitcher.md, "On Redis Cluster"). Read-only, identity-graph slot.
-- Called through script_calls.py CanonicalCall.
-- KEYS[1..] alias_keys: the alias key of each customer
-- ARGV[1] alias_head: the chain's next keys are built from it
-- ARGV[2] max_alias_hops: most hops followed (services/common/limits.py)
-- Returns per customer its survivor, or false when it is not an alias.
local out = {}
local got = redis.call('MGET', unpack(KEYS))
for i, a in ipairs(got) do
  local c = a
  if c then
    for _ = 1, tonumber(ARGV[2]) do
      local nxt = redis.call('GET', ARGV[1] .. c)
      if not nxt then break end
      c = nxt
    end
  end
  out[i] = c or false
end
return out
