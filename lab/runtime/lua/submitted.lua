-- A target's broker answered a batch of submits (lab/targets): each job `ok` (taken),
-- `failed` (refused: the scheduler releases it again) or `indeterminate` (timed out: the broker
-- may or may not have it). KEYS: run hash, submitted bitmap, indeterminate bitmap.
-- ARGV: JSON {ok: [seqs], failed: [seqs], indeterminate: [seqs]}.
-- Each outcome is counted in the run's `submitOk`, `submitFailed`, `submitIndeterminate`;
-- a seq taken (or maybe taken) is set in its bitmap, which the delivery verdict reads.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local given = cjson.decode(ARGV[1])
for _, seq in ipairs(given.ok or {}) do redis.call('SETBIT', KEYS[2], seq, 1) end
for _, seq in ipairs(given.indeterminate or {}) do
  redis.call('SETBIT', KEYS[2], seq, 1)
  redis.call('SETBIT', KEYS[3], seq, 1)
end
for field, name in pairs({submitOk = 'ok', submitFailed = 'failed',
                          submitIndeterminate = 'indeterminate'}) do
  local n = #(given[name] or {})
  if n > 0 then redis.call('HINCRBY', KEYS[1], field, n) end
end
return 1
