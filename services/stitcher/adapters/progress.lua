-- A stitcher publishes what it has proven about its input partitions (services/common/progress.py).
-- Called through script_calls.py ProgressCall.
-- KEYS[1] clock_inputs: HASH partition -> '<event ms>:<seen ms>:<grew ms>', field 'n' the partition count
-- ARGV[1] partition_count: of the input topic (0: unknown, not written)
-- ARGV[2..] reports: groups of four: partition, event ms, seen ms, grew ms.
-- Merged with what is stored (InputProgress.merge): the newest event time keeps its grew time, the seen
-- time only grows, so stitchers that held a partition in turn (or a late write of an old owner) never move
-- evidence back.
if tonumber(ARGV[1]) > 0 then redis.call('HSET', KEYS[1], 'n', ARGV[1]) end
for i = 2, #ARGV, 4 do
  local e, s, g = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur then
    local ce, cs, cg = string.match(cur, '^(-?%d+):(-?%d+):(-?%d+)$')
    ce, cs, cg = tonumber(ce), tonumber(cs), tonumber(cg)
    if ce >= e then e, g = ce, cg end
    if cs > s then s = cs end
  end
  redis.call('HSET', KEYS[1], ARGV[i], string.format('%d:%d:%d', e, s, g))
end
return 0
