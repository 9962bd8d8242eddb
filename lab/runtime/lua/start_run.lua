-- KEYS: active, runs, run hash, events.  ARGV: runId, xTotal, yMinutes, stream maxlen.
-- Creates a run and makes it the active one, unless a run is active already.
local active = redis.call('GET', KEYS[1])
if active then return {'conflict', active} end
local now = now_ms()
redis.call('HSET', KEYS[3], 'runId', ARGV[1], 'xTotal', ARGV[2], 'yMinutes', ARGV[3],
  'enqueued', 0, 'processed', 0, 'failed', 0, 'running', 1, 'state', 'running',
  'startedAt', now, 'releasedAt', '', 'stoppedAt', '', 'finishedAt', '')
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], now, ARGV[1])
emit_run(KEYS[4], ARGV[4], KEYS[3], 'run')
return {'ok', ARGV[1]}
