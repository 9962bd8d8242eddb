-- KEYS: active, events.  ARGV: run key template, stream maxlen, '1' to pause or '0' to resume.
-- Pauses (or resumes) releasing the active run. The limiter's state is untouched: release.lua
-- grants nothing while paused, and after a resume GCRA allows at most its burst, so a paused
-- run neither catches up nor loses its rate.
local run_id = redis.call('GET', KEYS[1])
if not run_id then return {'idle'} end
local run_key = string.format(ARGV[1], run_id)
if redis.call('HGET', run_key, 'state') ~= 'running' then return {'idle'} end
local paused = redis.call('HGET', run_key, 'paused') == '1'
if paused == (ARGV[3] == '1') then return {'ok', run_id, 'unchanged'} end
redis.call('HSET', run_key, 'paused', ARGV[3])
if ARGV[3] == '1' then redis.call('HSET', run_key, 'pausedAt', now_ms()) end
emit_run(KEYS[2], ARGV[2], run_key, 'run')
return {'ok', run_id, 'changed'}
