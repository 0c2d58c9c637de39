-- The live agent page's change probe of one customer, from its own hash slot ({<p>:c:<cid>}): one short
-- string that changes whenever the journey, its open alerts or the agents' handling of them does.
-- KEYS[1] summary: the journey summary (count, last times, stages: every stitched event changes it)
-- KEYS[2] open_alerts: the detector's open alerts
-- KEYS[3] handling: the agents' handling hash (field '~v' counts its writes)
-- Returns a SHA-1 of the summary and open alerts, ':' and the handling counter. Costs one script call per
-- poll and customer on screen, whatever the journey's length.
local parts = redis.call('HGETALL', KEYS[1])
parts[#parts + 1] = '\1'
for _, v in ipairs(redis.call('HGETALL', KEYS[2])) do parts[#parts + 1] = v end
return redis.sha1hex(table.concat(parts, '\0')) .. ':' .. (redis.call('HGET', KEYS[3], '~v') or '0')
