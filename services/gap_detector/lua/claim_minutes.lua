-- Claim the event-time minutes whose drop-off cells are ready to judge (exactly one worker gets each).
-- KEYS[1] the last judged minute STRING. ARGV[1] the newest judgeable minute (ms), ARGV[2] most minutes.
-- Returns the minutes to judge, oldest first.
local last = redis.call('GET', KEYS[1])
local target = tonumber(ARGV[1])
if last and tonumber(last) >= target then return {} end
redis.call('SET', KEYS[1], ARGV[1])
-- The first claim (nothing judged yet) looks back as far as one claim may reach.
local first = target - 60000 * (tonumber(ARGV[2]) - 1)
if last then first = math.max(tonumber(last) + 60000, first) end
local out = {}
for m = first, target, 60000 do table.insert(out, tostring(m)) end
return out
