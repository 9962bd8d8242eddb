-- The end of an attempt. KEYS: job, log, job stream, events.
-- ARGV: id, maxlen, state template, attempt, outcome (completed | failed | cancelled | retry),
-- error, result JSON, message, expected state (normally 'active'), lease token (checked when
-- the expected state is 'active').
-- Returns 1 when applied, 0 when the record moved on (deleted, another attempt or another
-- owner has it: then nothing is written).
local j = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'lease')
if j[1] ~= ARGV[9] or j[2] ~= ARGV[4] then return 0 end
if ARGV[9] == 'active' and j[3] ~= ARGV[10] then return 0 end
local outcome = ARGV[5]
if outcome == 'retry' then
  redis.call('HSET', KEYS[1], 'attempt', tonumber(ARGV[4]) + 1, 'error', ARGV[6],
    'queuedAt', now_ms(), 'startedAt', '', 'progress', 0, 'step', '', 'worker', '', 'lease', '')
  job_move(ARGV[3], ARGV[1], j[1], 'queued')
else
  redis.call('HSET', KEYS[1], 'finishedAt', now_ms(), 'error', ARGV[6], 'cancelRequested', 0,
    'lease', '')
  if outcome == 'completed' then
    redis.call('HSET', KEYS[1], 'progress', 100, 'result', ARGV[7])
  end
  job_move(ARGV[3], ARGV[1], j[1], outcome)
end
job_emit(ARGV[8])
return 1
