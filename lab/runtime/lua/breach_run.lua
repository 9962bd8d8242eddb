-- KEYS: active, run hash, events.  ARGV: runId, stream maxlen, objectives' states (JSON), '1' to
-- stop the run (abortOnBreach and an objective breached).
-- Records what the scheduler judged of the run's objectives; with a breach to abort on, the run
-- stops releasing (what is queued still finishes, as with stop) and ends `breached`.
if redis.call('HGET', KEYS[2], 'state') ~= 'running' then return {'idle'} end
redis.call('HSET', KEYS[2], 'sloState', ARGV[3])
if ARGV[4] ~= '1' then return {'ok'} end
redis.call('HSET', KEYS[2], 'state', 'breached', 'running', 0, 'stoppedAt', now_ms())
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
finish_if_done(KEYS[2], KEYS[1], ARGV[1])
emit_run(KEYS[3], ARGV[2], KEYS[2], 'run')
return {'breached'}
