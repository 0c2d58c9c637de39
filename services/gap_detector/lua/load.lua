#!lua
-- Load the detector state of customers that share one hash slot (the adapter groups a batch by slot; on
-- a single Redis the whole batch is one group).
-- Called through services/gap_detector/script_calls.py LoadCall, whose fields are named as below.
-- KEYS[1] first_state: the state hash of the first customer: every key touched is in its slot
-- ARGV[1] state_template: the detector_state key ('@CID@' for the customer id, from Keys)
-- ARGV[2] open_alerts_template: the open_alerts key ('@CID@' for the customer id)
-- ARGV[3] reads: MessagePack list, per customer: {id, token of the state the worker has cached ('' for
--       none), 1 to read its open alerts in any case (a merged-away customer's move to its survivor)}
-- Returns per customer {state hash (flat HGETALL; false when it still holds the cached token), open}:
-- open is the open-alert hash, read only when asked or for a state written before summaries were kept
-- in the state hash (field 'o'). Pending stall timers are field 't' of the state (the truth).
local function key(tpl, cid) return (string.gsub(tpl, '@CID@', cid)) end

local out = {}
for _, ask in ipairs(cmsgpack.unpack(ARGV[3])) do
  local cid, token, want_open = ask[1], ask[2], ask[3]
  local det_key = key(ARGV[1], cid)
  if token ~= '' and redis.call('HGET', det_key, 'n') == token then
    table.insert(out, {false, {}})
  else
    local det = redis.call('HGETALL', det_key)
    local open = {}
    if want_open == 1 or (#det > 0 and redis.call('HEXISTS', det_key, 'o') == 0) then
      open = redis.call('HGETALL', key(ARGV[2], cid))
    end
    table.insert(out, {det, open})
  end
end
return out
