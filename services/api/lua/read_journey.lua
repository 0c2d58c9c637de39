-- Read one customer's journey in a single call (HTTP API lookups): resolve, follow aliases, read.
-- KEYS[1] identifier key (id_key -> customer id), or '' when ARGV[1] already is the customer id.
-- ARGV[1] customer id ('' with an identifier key), ARGV[2] most recent touchpoints to return,
-- ARGV[3] most alias hops, ARGV[4..10] key templates with '@CID@' (from Keys): alias, timeline,
-- touchpoints, summary, masked, aliases_of, open_alerts.
-- Returns {} when unknown, else {cid, timeline, touchpoints, summary, masked, aliases, open_alerts}:
-- timeline the most recent event ids (oldest first), touchpoints their JSON in the same order (false
-- for a missing one), the other hashes as flat field/value lists, as HGETALL gives them.
local function key(tpl, cid) return (string.gsub(tpl, '@CID@', cid)) end

local cid = ARGV[1]
if cid == '' then
  cid = redis.call('GET', KEYS[1])
  if not cid then return {} end
end
for _ = 1, tonumber(ARGV[3]) do
  local survivor = redis.call('GET', key(ARGV[4], cid))
  if not survivor or survivor == cid then break end
  cid = survivor
end
if redis.call('GET', key(ARGV[4], cid)) then return {} end  -- a cycle or a chain too long: unknown

-- Only the touchpoints returned are read (HMGET in chunks: unpack has a stack limit).
local ids = redis.call('ZRANGE', key(ARGV[5], cid), -tonumber(ARGV[2]), -1)
local touchpoints, tkey = {}, key(ARGV[6], cid)
for i = 1, #ids, 1000 do
  local got = redis.call('HMGET', tkey, unpack(ids, i, math.min(i + 999, #ids)))
  for _, v in ipairs(got) do touchpoints[#touchpoints + 1] = v end
end

return {
  cid,
  ids,
  touchpoints,
  redis.call('HGETALL', key(ARGV[7], cid)),
  redis.call('HGETALL', key(ARGV[8], cid)),
  redis.call('SMEMBERS', key(ARGV[9], cid)),
  redis.call('HGETALL', key(ARGV[10], cid)),
}
