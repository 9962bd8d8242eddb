-- POST /jobs: record a new single job as queued (before its message is published).
-- KEYS: job, log, job stream, events, all-jobs index, delayed jobs.
-- ARGV: id, maxlen, state template, kind, payload JSON, attempts, runAt (ms; 0: now), priority,
-- target (who runs it: `lab`, or `bullmq` whose events lab.targets.bullmq_relay records).
-- Returns 'ok' (publish it now), 'delayed' (lab.runtime.delayed publishes it at runAt) or
-- 'exists'.
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
local now = now_ms()
local run_at = tonumber(ARGV[7]) or 0
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'kind', ARGV[4], 'payload', ARGV[5],
  'attempt', 1, 'attempts', ARGV[6], 'lastAttempt', ARGV[6], 'progress', 0, 'step', '',
  'createdAt', now, 'queuedAt', now, 'startedAt', '', 'finishedAt', '', 'error', '',
  'result', '', 'worker', '', 'cancelRequested', 0, 'runAt', '', 'priority', ARGV[8],
  'target', ARGV[9])
redis.call('ZADD', KEYS[5], 0, ARGV[1])
job_move(ARGV[3], ARGV[1], nil, 'queued')
if run_at > now then
  redis.call('HSET', KEYS[1], 'runAt', run_at)
  redis.call('ZADD', KEYS[6], run_at, ARGV[1])
  job_emit('queued (attempt 1 of ' .. ARGV[6] .. '), delayed until ' .. run_at)
  return 'delayed'
end
job_emit('queued (attempt 1 of ' .. ARGV[6] .. ')')
return 'ok'
