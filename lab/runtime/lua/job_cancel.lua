-- POST /jobs/{id}/cancel. KEYS: job, log, job stream, events, delayed jobs, promoting jobs.
-- ARGV: id, maxlen, state template.
-- A queued job is cancelled at once (its message is skipped when delivered); a running one is
-- flagged and stops at its next progress step. Returns {'cancelled'|'requested'|'missing'} or
-- {'conflict', state}.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state == 'queued' then
  -- Its message, if it was waiting for its time, never goes out now.
  redis.call('ZREM', KEYS[5], ARGV[1])
  redis.call('ZREM', KEYS[6], ARGV[1])
  redis.call('HSET', KEYS[1], 'finishedAt', now_ms())
  job_move(ARGV[3], ARGV[1], state, 'cancelled')
  job_emit('cancelled while queued')
  return {'cancelled'}
end
if state == 'active' then
  if redis.call('HGET', KEYS[1], 'cancelRequested') ~= '1' then
    redis.call('HSET', KEYS[1], 'cancelRequested', 1)
    job_emit('cancel requested; stopping at the next step')
  end
  return {'requested'}
end
return {'conflict', state}
