-- A worker received a single job's message: may it run?
-- KEYS: job, log, job stream, events, tombstone.  ARGV: id, maxlen, state template, attempt,
-- worker id, redelivered (0/1).
-- Returns {'run', lastAttempt, attempts} (the budget), {'skip', reason} or {'untracked'} (no record was ever made:
-- a message published outside the API runs as a plain job).
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('EXISTS', KEYS[5]) == 1 then return {'skip', 'deleted'} end
  return {'untracked'}
end
local attempt = tonumber(ARGV[4])
local j = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'cancelRequested', 'lastAttempt',
  'attempts')
local state, current = j[1], tonumber(j[2])
if state ~= 'queued' and state ~= 'active' then return {'skip', state} end
-- A manual retry re-publishes with attempt + 1, so an older message still in a queue is stale.
if attempt < current then return {'skip', 'stale attempt ' .. attempt} end
if j[3] == '1' then
  redis.call('HSET', KEYS[1], 'finishedAt', now_ms(), 'cancelRequested', 0)
  job_move(ARGV[3], ARGV[1], state, 'cancelled')
  job_emit('cancelled before it started')
  return {'skip', 'cancelled'}
end
local note = 'attempt ' .. attempt .. ' started on ' .. ARGV[5]
if state == 'active' then note = 'attempt ' .. attempt .. ' restarted on ' .. ARGV[5] ..
  ' (its previous worker stopped)' end
redis.call('HSET', KEYS[1], 'attempt', attempt, 'startedAt', now_ms(), 'finishedAt', '',
  'worker', ARGV[5], 'progress', 0, 'step', '')
if attempt > tonumber(j[4]) then redis.call('HSET', KEYS[1], 'lastAttempt', attempt) end
job_move(ARGV[3], ARGV[1], state, 'active')
job_emit(note)
return {'run', math.max(attempt, tonumber(j[4])), tonumber(j[5])}
