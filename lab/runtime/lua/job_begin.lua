-- A worker received a single job's message: may it run?
-- KEYS: job, log, job stream, events, tombstone, paused queues.
-- ARGV: id, maxlen, state template, attempt, worker id, redelivered (0/1), lease token,
-- lease ms, queue the message came from.
-- Returns {'run', lastAttempt, attempts} (the budget), {'skip', reason}, {'busy', ms, worker}
-- (another worker's lease on this attempt is alive: look again in `ms`), {'paused'} (its queue
-- is paused: put the message back) or {'untracked'} (no record was ever made: a message
-- published outside the API runs as a plain job).
if redis.call('SISMEMBER', KEYS[6], ARGV[9]) == 1 then return {'paused'} end
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('EXISTS', KEYS[5]) == 1 then return {'skip', 'deleted'} end
  return {'untracked'}
end
local attempt = tonumber(ARGV[4])
local j = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'cancelRequested', 'lastAttempt',
  'attempts', 'lease', 'leaseUntil', 'worker')
local state, current = j[1], tonumber(j[2])
if state ~= 'queued' and state ~= 'active' then return {'skip', state} end
-- A manual retry re-publishes with attempt + 1, so an older message still in a queue is stale.
if attempt < current then return {'skip', 'stale attempt ' .. attempt} end
local now = now_ms()
-- One attempt, one owner: a second copy of the message (a redelivery while its worker still
-- runs it, or a publish that raced a retry) waits until the owner's lease has lapsed.
if state == 'active' and attempt == current and j[6] and j[6] ~= '' and j[6] ~= ARGV[7] then
  local left = (tonumber(j[7]) or 0) - now
  if left > 0 then return {'busy', left, j[8] or ''} end
end
if j[3] == '1' then
  redis.call('HSET', KEYS[1], 'finishedAt', now, 'cancelRequested', 0, 'lease', '')
  job_move(ARGV[3], ARGV[1], state, 'cancelled')
  job_emit('cancelled before it started')
  return {'skip', 'cancelled'}
end
local note = 'attempt ' .. attempt .. ' started on ' .. ARGV[5]
if state == 'active' then note = 'attempt ' .. attempt .. ' restarted on ' .. ARGV[5] ..
  ' (its previous worker stopped)' end
redis.call('HSET', KEYS[1], 'attempt', attempt, 'startedAt', now, 'finishedAt', '',
  'worker', ARGV[5], 'progress', 0, 'step', '', 'lease', ARGV[7],
  'leaseUntil', now + tonumber(ARGV[8]))
if attempt > tonumber(j[4]) then redis.call('HSET', KEYS[1], 'lastAttempt', attempt) end
job_move(ARGV[3], ARGV[1], state, 'active')
job_emit(note)
return {'run', math.max(attempt, tonumber(j[4])), tonumber(j[5])}
