-- KEYS: active, events.  ARGV: run key template, stream maxlen, '1' to pause or '0' to resume.
-- Pauses (or resumes) releasing the active run. Shape time stops while paused: a resume adds
-- the pause to `pausedMs`, so the shape goes on where it stopped, neither catching up nor
-- skipping ahead. Each pause is kept in `pauses` (the run's history).
local run_id = redis.call('GET', KEYS[1])
if not run_id then return {'idle'} end
local run_key = string.format(ARGV[1], run_id)
if redis.call('HGET', run_key, 'state') ~= 'running' then return {'idle'} end
local paused = redis.call('HGET', run_key, 'paused') == '1'
if paused == (ARGV[3] == '1') then return {'ok', run_id, 'unchanged'} end
local now = now_ms()
redis.call('HSET', run_key, 'paused', ARGV[3])
if ARGV[3] == '1' then
  redis.call('HSET', run_key, 'pausedAt', now)
else
  local since = tonumber(redis.call('HGET', run_key, 'pausedAt') or now)
  local started = redis.call('HGET', run_key, 'shapeStartMs')
  if started and started ~= '' then  -- a pause before the first release costs shape time nothing
    redis.call('HINCRBY', run_key, 'pausedMs', now - math.max(since, tonumber(started)))
  end
  local pauses = cjson.decode(redis.call('HGET', run_key, 'pauses') or '[]')
  table.insert(pauses, {since, now})
  if #pauses > 1000 then table.remove(pauses, 1) end
  redis.call('HSET', run_key, 'pauses', cjson.encode(pauses))
end
emit_run(KEYS[2], ARGV[2], run_key, 'run')
return {'ok', run_id, 'changed'}
