-- POST /jobs/{id}/retry: a failed or cancelled job goes back to queued with attempt + 1 and a
-- fresh budget of automatic retries (its message is published by the caller, now: a delayed
-- entry left from before is removed, so no second copy goes out). KEYS: job, log, job stream,
-- events, delayed jobs, promoting jobs.
-- ARGV: id, maxlen, state template, highest attempt number a message may carry.
-- Returns {'queued', attempt}, {'missing'}, {'conflict', state} or {'limit', attempt}.
local j = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'attempts')
if not j[1] then return {'missing'} end
if j[1] ~= 'failed' and j[1] ~= 'cancelled' then return {'conflict', j[1]} end
local attempt = tonumber(j[2]) + 1
if attempt + tonumber(j[3]) - 1 > tonumber(ARGV[4]) then return {'limit', tonumber(j[2])} end
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('HSET', KEYS[1], 'attempt', attempt, 'lastAttempt', attempt + tonumber(j[3]) - 1,
  'queuedAt', now_ms(), 'startedAt', '', 'finishedAt', '', 'progress', 0, 'step', '',
  'error', '', 'result', '', 'worker', '', 'cancelRequested', 0, 'lease', '', 'runAt', '')
job_move(ARGV[3], ARGV[1], j[1], 'queued')
job_emit('retried by hand: attempt ' .. attempt)
return {'queued', attempt}
