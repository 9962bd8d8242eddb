-- KEYS: active, events.  ARGV: run key template, stream maxlen.
-- Stops releasing the active run; jobs already queued still finish and are counted.
local run_id = redis.call('GET', KEYS[1])
if not run_id then return {'idle'} end
local run_key = string.format(ARGV[1], run_id)
redis.call('HSET', run_key, 'state', 'stopped', 'running', 0, 'stoppedAt', now_ms())
redis.call('DEL', KEYS[1])
finish_if_done(run_key, KEYS[1], run_id)
emit_run(KEYS[2], ARGV[2], run_key, 'run')
return {'ok', run_id}
